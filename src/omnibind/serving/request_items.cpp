#include "omnibind/serving/request_items.h"

#include <cmath>
#include <filesystem>

#include "omnibind/serving/base64.h"
#include "omnibind/serving/request_error.h"

namespace fs = std::filesystem;

namespace omnibind::serving {

using retrieval::QueryItem;

bool path_allowed(const std::string& path, const std::vector<std::string>& allow_paths) {
  if (allow_paths.empty() || path.empty()) return false;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(path), ec);
  if (ec) return false;
  for (const auto& dir : allow_paths) {
    fs::path d = fs::weakly_canonical(fs::path(dir), ec);
    if (ec) continue;
    auto [di, pi] = std::mismatch(d.begin(), d.end(), p.begin(), p.end());
    if (di == d.end() && pi != p.end()) return true;
  }
  return false;
}

const nlohmann::json& require_array(const nlohmann::json& j, const std::string& field, size_t max_items) {
  if (!j.is_array()) throw RequestError(field, field + " must be an array");
  if (j.size() > max_items)
    throw RequestError(field, field + " has " + std::to_string(j.size()) + " items, at most " + std::to_string(max_items) +
                                  " are allowed per request", 413);
  return j;
}

std::string get_string(const nlohmann::json& j, const std::string& field) {
  if (!j.is_string()) throw RequestError(field, field + " must be a string");
  return j.get<std::string>();
}

int64_t get_int(const nlohmann::json& j, const std::string& field, int64_t lo, int64_t hi) {
  if (!j.is_number_integer() && !j.is_number_unsigned())
    throw RequestError(field, field + " must be an integer");
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw RequestError(field, field + " must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) throw RequestError(field, field + " must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

std::vector<float> get_vector(const nlohmann::json& j, const std::string& field, int64_t dim) {
  if (!j.is_array()) throw RequestError(field, field + " must be an array of numbers");
  if (static_cast<int64_t>(j.size()) != dim)
    throw RequestError(field, field + " has " + std::to_string(j.size()) + " values, the index has " + std::to_string(dim) + " dims");
  std::vector<float> v;
  v.reserve(j.size());
  for (const auto& x : j) {
    if (!x.is_number()) throw RequestError(field, field + " must hold only numbers");
    double d = x.get<double>();
    if (!std::isfinite(d)) throw RequestError(field, field + " holds a non-finite number");
    v.push_back(static_cast<float>(d));
  }
  return v;
}

namespace {
float get_weight(const nlohmann::json& j, const std::string& field) {
  if (!j.is_object() || !j.contains("weight")) return 1.0f;
  const auto& w = j["weight"];
  if (!w.is_number() || !std::isfinite(w.get<double>()))
    throw RequestError(field + ".weight", field + ".weight must be a finite number");
  return static_cast<float>(w.get<double>());
}
}  // namespace

QueryItem parse_media_item(const nlohmann::json& j, const std::string& field, const ItemRules& rules) {
  if (j.is_string()) return QueryItem::text(j.get<std::string>());
  if (!j.is_object()) throw RequestError(field, field + " must be a string (text) or an object {\"type\", \"data\"|\"path\"|\"text\"}");
  if (!j.contains("type")) throw RequestError(field + ".type", field + ".type is missing (text, audio, image or point)");
  const std::string type = get_string(j["type"], field + ".type");
  const float weight = get_weight(j, field);
  if (type == "text") {
    if (!j.contains("text")) throw RequestError(field + ".text", field + ".text is missing");
    return QueryItem::text(get_string(j["text"], field + ".text"), weight);
  }
  experts::Modality m;
  try {
    m = experts::parse_modality(type);
  } catch (const InputError&) {
    throw RequestError(field + ".type", field + ".type '" + type + "' is not one of text, audio, image, point");
  }
  std::string name;
  if (j.contains("name")) name = get_string(j["name"], field + ".name");
  if (j.contains("data")) {
    std::string b64 = get_string(j["data"], field + ".data");
    if (b64.size() / 4 * 3 > rules.max_media_bytes)
      throw RequestError(field + ".data", field + ".data is larger than the per-item limit", 413);
    auto bytes = base64_decode(b64);
    if (!bytes) throw RequestError(field + ".data", field + ".data is not valid base64");
    if (bytes->empty()) throw RequestError(field + ".data", field + ".data is empty");
    return QueryItem::media_item(m, experts::MediaInput::from_bytes(std::move(*bytes), name), weight);
  }
  if (j.contains("path")) {
    std::string path = get_string(j["path"], field + ".path");
    if (rules.allow_paths.empty())
      throw RequestError(field + ".path", field + ".path: server-side paths are disabled (start the server with --allow-paths DIR)", 403);
    if (!path_allowed(path, rules.allow_paths))
      throw RequestError(field + ".path", field + ".path is outside the directories allowed by --allow-paths", 403);
    if (!fs::is_regular_file(path)) throw RequestError(field + ".path", field + ".path: no such file");
    return QueryItem::media_item(m, experts::MediaInput::from_path(path), weight);
  }
  throw RequestError(field + ".data", field + " needs \"data\" (base64) or \"path\"");
}

QueryItem parse_query_item(const nlohmann::json& j, const std::string& field, const ItemRules& rules, int64_t dim) {
  if (j.is_object() && j.contains("id")) {
    auto id = get_int(j["id"], field + ".id", 0, INT64_MAX);
    return QueryItem::stored(id, get_weight(j, field));
  }
  if (j.is_object() && j.contains("vector")) return QueryItem::vec(get_vector(j["vector"], field + ".vector", dim), get_weight(j, field));
  if (j.is_object() && !j.contains("type") && j.contains("text")) {
    return QueryItem::text(get_string(j["text"], field + ".text"), get_weight(j, field));
  }
  return parse_media_item(j, field, rules);
}

bool is_composition(const nlohmann::json& j) { return j.is_object() && j.contains("compose"); }

namespace {
void append_items(const nlohmann::json& j, const std::string& field, const ItemRules& rules, int64_t dim, float scale,
                  size_t max_items, std::vector<QueryItem>& items, std::vector<std::string>& fields, int depth,
                  bool array_allowed) {
  auto push = [&](QueryItem q, const std::string& f) {
    if (items.size() >= max_items)
      throw RequestError(f, "the query has more than " + std::to_string(max_items) + " items", 413);
    if (!std::isfinite(q.weight * scale)) throw RequestError(f + ".weight", f + ".weight is too large");
    q.weight *= scale;
    items.push_back(std::move(q));
    fields.push_back(f);
  };
  if (is_composition(j)) {
    if (depth >= 4) throw RequestError(field, field + ": compositions nest at most 4 levels deep");
    const nlohmann::json& parts = j["compose"];
    const std::string f = field + ".compose";
    require_array(parts, f, max_items);
    if (parts.empty()) throw RequestError(f, f + " is an empty array");
    for (auto& [key, value] : j.items())
      if (key != "compose" && key != "weight")
        throw RequestError(field + "." + key, field + "." + key + ": a composition takes only \"compose\" and \"weight\"");
    const float w = get_weight(j, field);
    for (size_t i = 0; i < parts.size(); ++i)
      append_items(parts[i], f + "[" + std::to_string(i) + "]", rules, dim, scale * w, max_items, items, fields,
                   depth + 1, false);
    return;
  }
  if (j.is_array()) {
    if (!array_allowed) throw RequestError(field, field + " must be an item (text, media, {\"id\"}, {\"vector\"} or {\"compose\"}), not an array");
    require_array(j, field, max_items);
    if (j.empty()) throw RequestError(field, field + " is an empty array");
    for (size_t i = 0; i < j.size(); ++i)
      append_items(j[i], field + "[" + std::to_string(i) + "]", rules, dim, scale, max_items, items, fields, depth, false);
    return;
  }
  push(parse_query_item(j, field, rules, dim), field);
}
}  // namespace

void append_query_items(const nlohmann::json& j, const std::string& field, const ItemRules& rules, int64_t dim,
                        float sign, size_t max_items, std::vector<QueryItem>& items, std::vector<std::string>& fields) {
  append_items(j, field, rules, dim, sign, max_items, items, fields, 0, true);
}

nlohmann::json parse_body(const std::string& body, int max_depth) {
  // Depth check first: deeply nested input must not reach a recursive consumer.
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : body) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) throw RequestError("", "request body nests deeper than " + std::to_string(max_depth) + " levels");
    } else if (c == ']' || c == '}') --depth;
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw RequestError("", "request body is not valid JSON");
  if (!j.is_object()) throw RequestError("", "request body must be a JSON object");
  return j;
}

}  // namespace omnibind::serving
