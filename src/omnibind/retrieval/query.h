// Composable queries over an index: each query item (a stored id, a vector, or media/text through a
// QueryEmbedder) is normalised, the items are summed with their weights (negative = subtract, as in
// OmniBind's "this photo minus the cat plus the sound of rain") and the sum is renormalised.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/retrieval/query_embedder.h"
#include "omnibind/retrieval/vector_index.h"

namespace omnibind::retrieval {

struct QueryItem {
  enum class Kind { Id, Vector, Media };
  Kind kind = Kind::Vector;
  int64_t id = -1;
  std::vector<float> vector;
  Modality modality = Modality::Text;
  MediaInput media;
  float weight = 1.0f;

  static QueryItem stored(int64_t id, float w = 1) { QueryItem q; q.kind = Kind::Id; q.id = id; q.weight = w; return q; }
  static QueryItem vec(std::vector<float> v, float w = 1) { QueryItem q; q.vector = std::move(v); q.weight = w; return q; }
  static QueryItem text(std::string t, float w = 1) {
    QueryItem q; q.kind = Kind::Media; q.modality = Modality::Text; q.media = MediaInput::from_text(std::move(t)); q.weight = w; return q;
  }
  static QueryItem media_item(Modality m, MediaInput in, float w = 1) {
    QueryItem q; q.kind = Kind::Media; q.modality = m; q.media = std::move(in); q.weight = w; return q;
  }
  std::string describe() const;
};

// normalize(sum_i w_i * normalize(v_i)); InputError when an item or the sum is zero/mismatched.
std::vector<float> combine(const std::vector<std::vector<float>>& vectors, const std::vector<float>& weights);

// Where compose_items finds what the items refer to: every vector must have `dim` dims ("<dim_owner>
// has N" in messages), media are embedded by `embedder` (null: an item with media is refused), stored
// ids are read by `stored` (empty: refused with "query <item>: <no_ids>"); `no_items` is the message
// for an empty query.
struct QuerySources {
  int64_t dim = 0;
  std::string dim_owner;  // "the index", "the model"
  const QueryEmbedder* embedder = nullptr;
  std::function<std::vector<float>(int64_t id)> stored;
  std::string no_ids;
  std::string no_items;
};

// Resolves the items from `sources` and combines them (combine). InputError naming the item on an
// unknown id, a wrong dim, a missing model.
std::vector<float> compose_items(const std::vector<QueryItem>& items, const QuerySources& sources);

// compose_items with ids from `index` and media via `embedder` (may be null when no item needs it).
std::vector<float> compose_query(const std::vector<QueryItem>& items, const VectorIndex& index,
                                 const QueryEmbedder* embedder);

struct SearchResult {
  int64_t id = -1;
  float score = 0;
  ItemRecord record;
};
std::vector<SearchResult> search_index(const VectorIndex& index, const std::vector<float>& query, int64_t k,
                                       const Filter& filter = {}, int nprobe = 0);

// Zero-shot classification: each indexed item (after the filter) against text prompts made from
// class names with templates ("{}" is replaced by the class; several templates are averaged, as
// CLIP-style prompt ensembles do).
struct Classification {
  int64_t id = -1;
  std::string modality, source;
  std::vector<std::string> labels;
  std::string top_class;
  float score = 0;
  std::vector<float> class_scores;
};
std::vector<Classification> classify_items(const VectorIndex& index, const QueryEmbedder& embedder,
                                           const std::vector<std::string>& classes,
                                           const std::vector<std::string>& templates, const Filter& filter = {});

std::vector<std::string> split_list(const std::string& csv);  // "a, b,c" -> {"a","b","c"}; empty parts dropped
std::string fill_template(const std::string& tmpl, const std::string& cls);

}  // namespace omnibind::retrieval
