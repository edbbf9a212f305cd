// Training the demo's zoo experts on the paired split, and embedding world items with them.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/apps/demo/demo_lineup.h"
#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/experts/zoo/zoo_model.h"

namespace omnibind::apps {

// The zoo model input of one world item (media decoded from its file; text from its caption).
at::Tensor demo_zoo_input(const experts::zoo::ZooConfig& config, const WorldItem& item);
// Inputs of many items of one modality, stacked [N, ...] (decoded in parallel).
at::Tensor demo_zoo_inputs(const experts::zoo::ZooConfig& config, const std::vector<const WorldItem*>& items);

struct DemoZooTraining {
  int epochs = 12;
  uint64_t seed = 0;
  std::function<void(int epoch, int epochs, double loss)> progress;
};

// Trains `expert` on its share of the paired split: every instance of a strong class, a seeded
// `weak_share` of the others; one caption per instance from the expert's caption families, naming a
// random other class with probability `caption_noise`. Items of one class are positives of each other.
experts::zoo::ZooWeights train_demo_expert(const DemoExpert& expert, const WorldSpec& world,
                                           const std::vector<WorldItem>& paired, const DemoZooTraining& options);

}  // namespace omnibind::apps
