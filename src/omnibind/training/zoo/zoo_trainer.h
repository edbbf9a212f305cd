// Trains a zoo expert (experts/zoo/) from paired, already preprocessed inputs: CLIP-style symmetric
// InfoNCE with a learned temperature (logit_scale, clamped to [0, log 100]) over every modality pair
// of every item (pairs, triples, ...: an item contributes to each pair of modalities it has).
// Items sharing a `group` id (e.g. the same class or the same caption) are positives of each other
// (soft targets), so repeated captions are not pushed apart. Seeded and deterministic for a fixed
// thread count (init from a seeded CPU generator, batches from a seeded mt19937_64, Adam).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/experts/zoo/zoo_model.h"

namespace omnibind::training::zoo {

struct ZooPairedData {
  std::map<std::string, at::Tensor> inputs;   // modality -> [N, ...] stacked zoo_*_input outputs; row i = item i
  std::map<std::string, at::Tensor> present;  // optional modality -> bool [N] (absent key = all rows present)
  at::Tensor group;                           // optional int64 [N]; undefined = every item its own group
  int64_t items() const;
};

struct ZooTrainOptions {
  int64_t epochs = 10;
  int64_t batch = 64;
  double lr = 1e-3;
  double weight_decay = 0.0;
  uint64_t seed = 0;
  int threads = 0;  // 0 = leave libtorch's setting alone
};

struct ZooTrainProgress {
  int64_t epoch = 0, epochs = 0;  // 1-based epoch just finished
  double loss = 0.0;              // mean loss over the epoch
  double temperature = 0.0;       // 1 / exp(logit_scale)
};
using ZooProgressFn = std::function<void(const ZooTrainProgress&)>;

// InputError when the data does not fit the config (modality without a tower, row counts, shapes,
// fewer than 2 modalities, no item with two modalities). Returns detached float32 weights.
experts::zoo::ZooWeights train_zoo_expert(const experts::zoo::ZooConfig& config, const ZooPairedData& data,
                                          const ZooTrainOptions& options, const ZooProgressFn& progress = {});

}  // namespace omnibind::training::zoo
