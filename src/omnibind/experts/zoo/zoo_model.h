// The zoo expert's networks as plain structs over named tensors (the names are the checkpoint's):
//   <tower>.conv.<i>.{weight,bias}   audio/image 3x3 conv (same padding) + ReLU + 2x2 max-pool
//   point.mlp.<i>.{weight,bias}      shared per-point Linear + ReLU, then max over points
//   text.embedding.weight            [buckets + 1, width], row 0 = padding (masked out of the mean)
//   <tower>.fc1.{weight,bias}        -> hidden, ReLU
//   <tower>.fc2.{weight,bias}        -> dim
//   logit_scale                      [] learned CLIP temperature (log of 1/T), kept for training
// forward() is plain ATen: the same code runs inference (read-only mmap'ed weights) and training
// (parameters that require grad), so what the trainer optimises is exactly what the expert runs.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/experts/zoo/zoo_config.h"

namespace omnibind::experts::zoo {

using ZooWeights = std::map<std::string, at::Tensor>;

struct ZooLinear {
  at::Tensor weight, bias;  // [out, in], [out]
  at::Tensor forward(const at::Tensor& x) const;
};

// audio [B, 1, frames, mel_bins] / image [B, C, size, size] -> [B, dim] (not normalised).
struct ZooConvTower {
  std::vector<ZooLinear> convs;  // weight [out, in, 3, 3]
  ZooLinear fc1, fc2;
  at::Tensor forward(const at::Tensor& x) const;
};

// [B, points, 3] -> [B, dim].
struct ZooPointTower {
  std::vector<ZooLinear> mlp;
  ZooLinear fc1, fc2;
  at::Tensor forward(const at::Tensor& x) const;
};

// int64 feature ids [B, max_tokens] (0 = padding) -> [B, dim].
struct ZooTextTower {
  at::Tensor embedding;
  ZooLinear fc1, fc2;
  at::Tensor forward(const at::Tensor& ids) const;
};

struct ZooModel {
  ZooConfig config;
  std::optional<ZooConvTower> audio, image;
  std::optional<ZooPointTower> point;
  std::optional<ZooTextTower> text;
  at::Tensor logit_scale;

  // Checks that `weights` holds every tensor the config needs with the right shape (InputError
  // naming `source`, the key, the shape found and the one expected) and binds them (no copy).
  static ZooModel bind(const ZooConfig& config, const ZooWeights& weights, const std::string& source);

  // modality name -> the tower's output [B, dim], L2-normalised.
  at::Tensor forward(const std::string& modality, const at::Tensor& batch) const;
};

// Every tensor a config needs, with its shape, in a stable order.
std::vector<std::pair<std::string, std::vector<int64_t>>> zoo_parameter_shapes(const ZooConfig& config);

// Fresh weights (He-normal weights, zero biases, N(0, 0.5) embeddings, logit_scale = log(1/0.07)),
// deterministic in `seed`.
ZooWeights init_zoo_weights(const ZooConfig& config, uint64_t seed);

}  // namespace omnibind::experts::zoo
