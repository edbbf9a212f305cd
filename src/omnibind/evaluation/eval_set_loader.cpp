// load_eval_set: an evaluation pool directory (the embedding-pool format of docs/ARCHITECTURE.md#training,
// contract A) read whole into RAM. Evaluation sets are small; the training side streams (EmbeddingPool).
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::evaluation {
namespace {

namespace fs = std::filesystem;

at::Tensor read_column(const tensor_io::StateDict& sd, const std::string& key, const std::string& file) {
  at::Tensor t = tensor_io::to_tensor(sd.at(key));
  require(t.scalar_type() == at::kLong, file + ": '" + key + "' must be int64");
  return t.clone();
}

}  // namespace

EvalSet load_eval_set(const fs::path& dir) {
  const fs::path manifest_path = dir / "manifest.json";
  require(fs::is_regular_file(manifest_path), dir.string() + ": not an embedding pool (no manifest.json)");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(read_file_bytes(manifest_path.string()));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(manifest_path.string() + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  require(m.value("format", "") == "omnibind-pool", manifest_path.string() + ": format is not 'omnibind-pool'");
  EvalSet set;
  std::map<std::string, std::pair<std::vector<std::string>, int64_t>> experts;  // name -> modalities, dim
  try {
    for (auto& e : m.at("experts"))
      experts[e.at("name").get<std::string>()] = {e.at("modalities").get<std::vector<std::string>>(), e.at("dim").get<int64_t>()};
    if (m.contains("classes")) set.classes = m.at("classes").get<std::vector<std::string>>();
    for (auto& [modality, info] : m.at("modalities").items()) {
      ModalityItems items;
      std::vector<std::map<std::string, at::Tensor>> parts;
      for (auto& shard : info.at("shards")) {
        const std::string file = (dir / shard.get<std::string>()).string();
        auto sd = tensor_io::read_safetensors(file).tensors;
        std::map<std::string, at::Tensor> part;
        for (auto& [name, spec] : experts) {
          if (std::find(spec.first.begin(), spec.first.end(), modality) == spec.first.end()) continue;
          require(sd.contains(name), file + ": missing expert '" + name + "' which the manifest lists for " + modality);
          at::Tensor t = tensor_io::to_tensor(sd.at(name));
          require(t.dim() == 2 && t.size(1) == spec.second, file + ": '" + name + "' must be [N, " + std::to_string(spec.second) + "]");
          require(at::isfinite(t).all().item<bool>(), file + ": '" + name + "' holds NaN or Inf");
          part[name] = t.to(at::kFloat);
        }
        for (const char* col : {"label", "pair", "source", "labels"})
          if (sd.contains(col)) part[std::string("#") + col] = read_column(sd, col, file);
        parts.push_back(std::move(part));
      }
      require(!parts.empty(), manifest_path.string() + ": " + modality + " has no shards");
      for (auto& [key, _] : parts.front()) {
        std::vector<at::Tensor> ts;
        for (auto& p : parts) {
          require(p.count(key), manifest_path.string() + ": " + modality + " shards disagree on '" + key.substr(key[0] == '#') + "'");
          ts.push_back(p.at(key));
        }
        at::Tensor t = at::cat(ts, 0);
        if (key == "#label") items.label = t;
        else if (key == "#pair") items.pair = t;
        else if (key == "#source") items.source = t;
        else if (key == "#labels") items.labels = t;
        else items.experts[key] = t;
      }
      set.modalities[modality] = std::move(items);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(manifest_path.string() + ": " + std::string(e.what()));
  }
  const fs::path prompts = dir / "prompts.safetensors";
  if (fs::is_regular_file(prompts)) {
    auto sd = tensor_io::read_safetensors(prompts.string()).tensors;
    set.prompt_class = read_column(sd, "prompt_class", prompts.string());
    for (auto& name : sd.names())
      if (name != "prompt_class") set.prompts[name] = tensor_io::to_tensor(sd.at(name)).to(at::kFloat);
  }
  set.num_classes = static_cast<int64_t>(set.classes.size());
  if (set.num_classes == 0) {  // no class names: the largest label or prompt class + 1
    int64_t mx = -1;
    for (auto& [_, items] : set.modalities)
      if (items.label.defined() && items.label.numel()) mx = std::max(mx, items.label.max().item<int64_t>());
    if (set.prompt_class.defined() && set.prompt_class.numel()) mx = std::max(mx, set.prompt_class.max().item<int64_t>());
    set.num_classes = mx + 1;
  }
  set.validate();
  return set;
}

}  // namespace omnibind::evaluation
