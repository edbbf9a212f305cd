// write_synthetic_pools: the synthetic world on disk in the embedding-pool format, through the one
// pool writer (training::PoolWriter: manifest.json, shards, prompts.safetensors; atomic rename).
#include <ATen/ATen.h>

#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::evaluation {
namespace {

namespace fs = std::filesystem;

void write_pool(const SyntheticWorld& w, const std::map<std::string, ModalityItems>& modalities, const EvalSet* prompts,
                const fs::path& dir) {
  training::PoolManifest manifest;
  for (const auto& e : w.options.experts) manifest.experts.push_back({e.name, e.modalities, e.dim});
  manifest.backbone = w.options.backbone;
  manifest.classes = w.classes;
  training::PoolWriter writer(dir, manifest);
  for (const auto& [name, items] : modalities) {
    std::map<std::string, at::Tensor> columns;
    if (items.label.defined()) columns["label"] = items.label;
    if (items.labels.defined()) columns["labels"] = items.labels;
    if (items.pair.defined()) columns["pair"] = items.pair;
    if (items.source.defined()) columns["source"] = items.source;
    writer.add(name, items.experts, columns);
  }
  if (prompts) writer.set_prompts(prompts->prompts, prompts->prompt_class);
  writer.finish();
}

}  // namespace

void write_synthetic_pools(const SyntheticWorld& world, const fs::path& train_dir, const fs::path& eval_dir) {
  write_pool(world, world.train, nullptr, train_dir);
  write_pool(world, world.eval.modalities, &world.eval, eval_dir);
}

}  // namespace omnibind::evaluation
