// Per-input noise of each slot of a unified embedding, estimated from the slots' disagreement alone (issue 16
// item 3; docs/reference/binding_training.md "Routers trained to denoise").
//
// Every slot k of a modality's unified embedding is the same input seen through a different expert space and
// mapped by that space's heads toward the backbone: h_k = t + e_k, with t what all of them aim at and e_k the
// space's error on this input. If the errors of different spaces are independent with variances s_k, then
// E||h_i - h_j||^2 = s_i + s_j, and with S >= 3 slots each s_k is identified without knowing t:
//   s_k = mean over pairs {i, j} not containing k of (D_ki + D_kj - D_ij) / 2
//       = ((S - 1) R_k - Total) / ((S - 1)(S - 2)),   R_k = sum_i D_ki,  Total = sum_{i<j} D_ij.
// One input's estimate is noisy (and can be negative); its mean over inputs the router cannot tell apart is
// unbiased. The mixture sum_k w_k h_k then has error variance sum_k w_k^2 s_k, least at w_k ~ 1/s_k
// (inverse-variance weighting): a router can learn which space to trust for which input without any pairing,
// so mining errors (which favour the miner's own space) cannot bias it.
#pragma once
#include <ATen/core/Tensor.h>

namespace omnibind::training {

// slots [B, S, D] -> [B, S] float: each slot's estimated error variance; undefined when S < 3.
at::Tensor slot_noise_variance(const at::Tensor& slots);

// weights [B, S], noise [B, S] -> [B]: the estimated error variance sum_k w_k^2 s_k of each routed embedding.
at::Tensor mixture_noise(const at::Tensor& weights, const at::Tensor& noise);

}  // namespace omnibind::training
