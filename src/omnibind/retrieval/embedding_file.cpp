#include "omnibind/retrieval/embedding_file.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::retrieval {

namespace {
bool is_modality(const std::string& s) {
  return s == "audio" || s == "image" || s == "text" || s == "point";
}

std::string modality_for(const std::string& path, const std::string& key, const std::string& override_m,
                         const std::map<std::string, std::string>& meta) {
  if (!override_m.empty()) {
    experts::parse_modality(override_m);  // InputError listing valid names
    return override_m;
  }
  if (is_modality(key)) return key;
  auto slash = key.find('/');
  if (slash != std::string::npos && is_modality(key.substr(0, slash))) return key.substr(0, slash);
  auto it = meta.find("modality");
  if (it != meta.end() && is_modality(it->second)) return it->second;
  throw InputError(path + ": cannot tell the modality of tensor '" + key +
                   "' (name it audio/image/text/point, set __metadata__ modality, or pass --modality)");
}
}  // namespace

EmbeddingSet read_embedding_file(const std::string& path, const EmbeddingReadOptions& o) {
  auto file = tensor_io::read_safetensors(path);
  const auto& meta = file.metadata;
  nlohmann::json paths;
  if (auto it = meta.find("paths"); it != meta.end()) paths = nlohmann::json::parse(it->second, nullptr, false);
  std::string expert;
  if (auto it = meta.find("expert"); it != meta.end()) expert = it->second;

  EmbeddingSet set;
  std::vector<std::string> keys = file.tensors.names();
  if (!o.key.empty()) {
    require(file.tensors.contains(o.key), path + ": no tensor '" + o.key + "'");
    keys = {o.key};
  }
  require(!keys.empty(), path + ": holds no tensors");
  size_t row_base = 0;
  for (const auto& key : keys) {
    const auto& raw = file.tensors.at(key);
    require(raw.shape.size() == 2 || raw.shape.size() == 1,
            path + ": tensor '" + key + "' has shape " + raw.shape_string() + ", expected [N, D] rows");
    auto dt = raw.dtype;
    require(dt == tensor_io::DType::F32 || dt == tensor_io::DType::F16 || dt == tensor_io::DType::BF16 ||
                dt == tensor_io::DType::F64,
            path + ": tensor '" + key + "' has dtype " + std::string(tensor_io::dtype_name(dt)) +
                ", expected a float type (F32, F16, BF16, F64)");
    at::Tensor t = tensor_io::to_tensor(raw).to(at::kFloat).contiguous();
    if (t.dim() == 1) t = t.unsqueeze(0);
    const int64_t n = t.size(0), d = t.size(1);
    require(n > 0 && d > 0, path + ": tensor '" + key + "' is empty " + raw.shape_string());
    if (set.dim == 0) set.dim = d;
    require(d == set.dim, path + ": tensor '" + key + "' has " + std::to_string(d) + " columns, others have " +
                              std::to_string(set.dim));
    const std::string modality = modality_for(path, key, o.modality, meta);
    const nlohmann::json* key_paths = nullptr;
    if (paths.is_object() && paths.contains(key) && paths[key].is_array()) key_paths = &paths[key];
    const float* p = t.data_ptr<float>();
    set.rows.insert(set.rows.end(), p, p + n * d);
    for (int64_t i = 0; i < n; ++i) {
      ItemRecord r;
      r.modality = modality;
      const nlohmann::json* src = nullptr;
      if (key_paths && i < static_cast<int64_t>(key_paths->size())) src = &(*key_paths)[i];
      else if (paths.is_array() && row_base + i < paths.size()) src = &paths[row_base + i];
      if (src && src->is_string()) r.source = src->get<std::string>();
      nlohmann::json m = nlohmann::json::object();
      m["key"] = key;
      m["row"] = i;
      if (!expert.empty()) m["expert"] = expert;
      r.metadata = m.dump();
      set.items.push_back(std::move(r));
    }
    row_base += static_cast<size_t>(n);
  }
  return set;
}

namespace {
nlohmann::json read_json_file(const std::string& path) {
  auto j = nlohmann::json::parse(read_file_bytes(path), nullptr, false);
  require(!j.is_discarded(), path + ": not valid JSON");
  return j;
}
}  // namespace

void apply_labels_file(EmbeddingSet& set, const std::string& path) {
  auto j = read_json_file(path);
  require(j.is_array() && j.size() == set.items.size(),
          path + ": expected a JSON array with one label entry per row (" + std::to_string(set.items.size()) + ")");
  for (size_t i = 0; i < j.size(); ++i) {
    auto& e = j[i];
    auto& labels = set.items[i].labels;
    if (e.is_string()) {
      labels = {e.get<std::string>()};
    } else if (e.is_array()) {
      labels.clear();
      for (auto& l : e) {
        require(l.is_string(), path + ": entry " + std::to_string(i) + " must hold strings");
        labels.push_back(l.get<std::string>());
      }
    } else {
      require(e.is_null(), path + ": entry " + std::to_string(i) + " must be a string, an array of strings or null");
    }
  }
}

void apply_metadata_file(EmbeddingSet& set, const std::string& path) {
  auto j = read_json_file(path);
  require(j.is_object() || (j.is_array() && j.size() == set.items.size()),
          path + ": expected a JSON object (for every row) or an array of " + std::to_string(set.items.size()) +
              " objects (one per row)");
  for (size_t i = 0; i < set.items.size(); ++i) {
    const auto& add = j.is_object() ? j : j[i];
    require(add.is_object(), path + ": entry " + std::to_string(i) + " is not a JSON object");
    auto m = nlohmann::json::parse(set.items[i].metadata, nullptr, false);
    if (!m.is_object()) m = nlohmann::json::object();
    for (auto& [k, v] : add.items()) {
      if (k == "source" && v.is_string()) set.items[i].source = v.get<std::string>();
      else m[k] = v;
    }
    set.items[i].metadata = m.dump();
  }
}

}  // namespace omnibind::retrieval
