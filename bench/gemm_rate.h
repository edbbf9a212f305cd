// The projector step's GEMM FLOPs and this machine's rate for those GEMMs alone (bench_binding_train,
// bench_world_family): the yardstick their projector GFLOP/s are set against. Header-only.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace omnibind::bench {

// GEMM FLOPs of one projector head step on `rows` rows (training/head_bank.h step_flops): forward x W1^T,
// r W2^T, logits; backward dU, dW2, dR, dW1. x [rows, d], hidden H, output D.
inline double projector_step_flops(double rows, double d, double H, double D) {
  return 2 * rows * (d * H + H * D) + 4 * rows * rows * D + 2 * rows * (2 * H * D + H * d);
}

// The same 7 GEMMs alone (at::mm_out on random tensors, current compute threads): one warm-up step, then the
// best of `rounds` timings of `reps` steps, GFLOP/s.
inline double gemm_rate(int64_t rows, int64_t d, int64_t H, int64_t D, int reps, int rounds = 1) {
  at::Tensor x = at::randn({rows, d}), W1 = at::randn({H, d}), W2 = at::randn({D, H}), r = at::randn({rows, H});
  at::Tensor y = at::randn({rows, D}), g = at::randn({rows, D}), L = at::randn({rows, rows});
  at::Tensor a1 = at::empty({rows, H}), a2 = at::empty({rows, D}), lg = at::empty({rows, rows}), du = at::empty({rows, D});
  at::Tensor gw2 = at::empty({D, H}), gr = at::empty({rows, H}), gw1 = at::empty({H, d});
  auto once = [&] {
    at::mm_out(a1, x, W1.t());
    at::mm_out(a2, r, W2.t());
    at::mm_out(lg, a2, y.t());
    at::mm_out(du, L, y);
    at::mm_out(gw2, g.t(), r);
    at::mm_out(gr, g, W2);
    at::mm_out(gw1, gr.t(), x);
  };
  once();
  const double flops = projector_step_flops(static_cast<double>(rows), static_cast<double>(d), static_cast<double>(H),
                                            static_cast<double>(D));
  double best = 0;
  for (int k = 0; k < rounds; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) once();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, reps * flops / s / 1e9);
  }
  return best;
}

}  // namespace omnibind::bench
