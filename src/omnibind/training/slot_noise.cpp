#include "omnibind/training/slot_noise.h"

#include <ATen/ATen.h>

namespace omnibind::training {

at::Tensor slot_noise_variance(const at::Tensor& slots) {
  const int64_t S = slots.size(1);
  if (S < 3) return at::Tensor();
  // Distances do not depend on where the slots aim: centre them first, so |a|^2 + |b|^2 - 2 a.b does not cancel.
  at::Tensor x = slots.to(at::kFloat);
  x = x - x.mean(1, true);
  const at::Tensor sq = (x * x).sum(2);                                                  // [B, S]
  const at::Tensor dist = (sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * at::bmm(x, x.transpose(1, 2))).clamp_min(0);  // [B, S, S]
  const at::Tensor row = dist.sum(2);                                                    // R_k, the diagonal is 0
  const at::Tensor total = row.sum(1, true) / 2;                                          // sum over i < j
  const double s = static_cast<double>(S);
  return ((s - 1) * row - total) / ((s - 1) * (s - 2));
}

at::Tensor mixture_noise(const at::Tensor& weights, const at::Tensor& noise) { return (weights * weights * noise).sum(1); }

}  // namespace omnibind::training
