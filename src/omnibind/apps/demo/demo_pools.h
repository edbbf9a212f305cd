// The demo's embedding pools (training/embedding_pool.h format): every world item embedded by every
// lineup expert that covers its modality. Training pools are unpaired (no `pair` column); evaluation
// pools carry true-tuple ids and the class prompt ensembles.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/apps/demo/demo_lineup.h"
#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/experts/zoo/zoo_model.h"

namespace omnibind::apps {

struct DemoSpace {
  DemoExpert expert;
  experts::zoo::ZooWeights weights;
  experts::zoo::ZooModel model;  // bound to `weights`
};

// Unit embeddings [N, d] of items of one modality by one space (batched, no grad).
at::Tensor embed_world_items(const DemoSpace& space, const std::vector<const WorldItem*>& items);

// Captions generated in memory: `per_class` instances of every class, one caption per source.
std::vector<WorldItem> demo_captions(const WorldSpec& world, int per_class, uint64_t salt);

struct DemoPoolOptions {
  // Write `pair` = the item's class. The world draws each modality's variation (pose, pitch jitter, wording)
  // independently, so two items of one class share nothing but the class: a true match is any item of it.
  bool pairs = false;
  bool prompts = false;  // write prompts.safetensors from class_prompts()
};

void write_demo_pool(const std::filesystem::path& dir, const std::vector<DemoSpace>& spaces, const WorldSpec& world,
                     const std::vector<WorldItem>& items, const DemoPoolOptions& options);

}  // namespace omnibind::apps
