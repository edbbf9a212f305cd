// write_synthetic_pools: the synthetic world on disk in the embedding-pool format (manifest.json,
// <modality>.safetensors, prompts.safetensors), each directory written as DIR.tmp-<pid> then renamed.
// TODO(TRAIN contract A): switch to training::PoolWriter once it is in the tree; the bytes follow the contract.
#include <ATen/ATen.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::evaluation {
namespace {

namespace fs = std::filesystem;

void write_pool(const SyntheticWorld& w, const std::map<std::string, ModalityItems>& modalities, const EvalSet* prompts,
                const fs::path& dir) {
  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    nlohmann::ordered_json m;
    m["format"] = "omnibind-pool";
    m["version"] = 1;
    nlohmann::ordered_json experts = nlohmann::ordered_json::array();
    for (auto& e : w.options.experts) experts.push_back({{"name", e.name}, {"modalities", e.modalities}, {"dim", e.dim}});
    m["experts"] = experts;
    m["backbone"] = w.options.backbone;
    m["classes"] = w.classes;
    nlohmann::ordered_json mods = nlohmann::ordered_json::object();
    for (auto& [name, items] : modalities) {
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      for (auto& [e, t] : items.experts) tensors.emplace_back(e, t.contiguous());
      if (items.label.defined()) tensors.emplace_back("label", items.label.contiguous());
      if (items.pair.defined()) tensors.emplace_back("pair", items.pair.contiguous());
      if (items.source.defined()) tensors.emplace_back("source", items.source.contiguous());
      tensor_io::write_tensors((tmp / (name + ".safetensors")).string(), tensors);
      mods[name] = {{"shards", {name + ".safetensors"}}, {"rows", items.rows()}};
    }
    m["modalities"] = mods;
    if (prompts) {
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      for (auto& [e, t] : prompts->prompts) tensors.emplace_back(e, t.contiguous());
      tensors.emplace_back("prompt_class", prompts->prompt_class.contiguous());
      tensor_io::write_tensors((tmp / "prompts.safetensors").string(), tensors);
    }
    write_bytes_atomically((tmp / "manifest.json").string(), m.dump(2) + "\n");
    fs::remove_all(dir);
    fs::rename(tmp, dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace

void write_synthetic_pools(const SyntheticWorld& world, const fs::path& train_dir, const fs::path& eval_dir) {
  write_pool(world, world.train, nullptr, train_dir);
  write_pool(world, world.eval.modalities, &world.eval, eval_dir);
}

}  // namespace omnibind::evaluation
