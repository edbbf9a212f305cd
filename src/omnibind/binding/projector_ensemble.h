// One expert space's projector heads (the reference's Reaction_Head_mini.Head2, K per space):
//   head_k(x) = L2normalize(BN(Linear(ReLU(BN(Linear(x))))))     x: [B, d] -> [B, D]
//   ensemble(x) = mean_k head_k(x)      (averaged, NOT re-normalised, as the reference does)
// Weights are stacked ([K*H, d] first layers, [K, D, H] second layers, BN folded). bf16 runs the K first
// layers as one GEMM; fp32 runs head by head on views of the stacks (see forward() for why).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::binding {

struct ProjectorEnsemble {
  int64_t heads = 0, in_dim = 0, hidden = 0, out_dim = 0;
  at::Tensor w1;  // [K*H, d]   BN folded
  at::Tensor b1;  // [K*H]
  at::Tensor w2;  // [K, D, H]  BN folded (bmm reads it transposed, no copy)
  at::Tensor b2;  // [K, 1, D]

  // Heads "<prefix><first>..<prefix><first+K-1>" (prefix "projs." or "ib_projs."), each with
  // "Head2.mlps.{0,1,3,4}" tensors as in the official checkpoints.
  static ProjectorEnsemble load(const tensor_io::StateDict& sd, const std::string& prefix, int64_t first, int64_t heads);

  // x: [B, d] float32 -> [B, D] float32. compute_dtype kBFloat16 runs the GEMMs in bf16.
  at::Tensor forward(const at::Tensor& x) const;
  // The K unit-norm head outputs [B, K, D] (used by training diagnostics and tests).
  at::Tensor forward_heads(const at::Tensor& x) const;

  // A copy whose weights are stored in `dtype` (kFloat or kBFloat16).
  ProjectorEnsemble with_weight_dtype(at::ScalarType dtype) const;
};

}  // namespace omnibind::binding
