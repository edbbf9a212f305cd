// JSON request items -> media inputs and query items, with the field path in every error.
//   "some text"                                   text
//   {"type": "text", "text": "..."}               text
//   {"type": "audio"|"image"|"point", "data": BASE64, "name": "x.wav"}   media bytes
//   {"type": ..., "path": "/srv/media/x.wav"}     a server-side file, only under --allow-paths
//   {"id": 42} / {"vector": [..]}                 search only: a stored item / a raw vector
//   {"compose": [item, ...]}                      a composed query: the items' unit embeddings summed
//                                                 with their weights (negative = subtract), renormalised
//   any item may carry "weight" (composition; a compose's weight multiplies its items' weights)
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "omnibind/retrieval/query.h"

namespace omnibind::serving {

struct ItemRules {
  std::vector<std::string> allow_paths;  // canonical directories; empty = paths refused
  size_t max_media_bytes = 32u << 20;
};

// A media or text item. `field` names it in errors.
retrieval::QueryItem parse_media_item(const nlohmann::json& j, const std::string& field, const ItemRules& rules);
// A search item: media/text, {"id"}, or {"vector"} (with the index's dim).
retrieval::QueryItem parse_query_item(const nlohmann::json& j, const std::string& field, const ItemRules& rules,
                                      int64_t dim);
// The items of one query field, appended to `items`/`fields`: one item, an array of items (summed), or
// {"compose": [...]} (flattened, nested composes too; its weight multiplies its items'). Every weight is
// multiplied by `sign` (-1 for a "sub" field). Ids and vectors are allowed (search, locate, embeddings).
// RequestError naming the field; 413 past `max_items` items in all.
void append_query_items(const nlohmann::json& j, const std::string& field, const ItemRules& rules, int64_t dim,
                        float sign, size_t max_items, std::vector<retrieval::QueryItem>& items,
                        std::vector<std::string>& fields);
// Is j an object {"compose": ...}?
bool is_composition(const nlohmann::json& j);

// Is `path` inside one of the allowed directories (after resolving symlinks and '..')?
bool path_allowed(const std::string& path, const std::vector<std::string>& allow_paths);

// Typed accessors that name the field on a wrong type.
const nlohmann::json& require_array(const nlohmann::json& j, const std::string& field, size_t max_items);
std::string get_string(const nlohmann::json& j, const std::string& field);
int64_t get_int(const nlohmann::json& j, const std::string& field, int64_t lo, int64_t hi);
std::vector<float> get_vector(const nlohmann::json& j, const std::string& field, int64_t dim);

// Parses a request body; RequestError on invalid JSON or nesting deeper than `max_depth`.
nlohmann::json parse_body(const std::string& body, int max_depth = 32);

}  // namespace omnibind::serving
