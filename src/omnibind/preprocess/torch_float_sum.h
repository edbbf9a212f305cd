// The float32 sum of a contiguous run of floats in exactly the order torch 1.13's CPU reduction
// adds them (SumKernel's cascade sum as dispatched on AVX2: 8-lane vectors, 4 interleaved vector
// accumulators, 4 cascade levels of 16 rows, then the scalar tail, then the lanes), single-threaded
// as the reference fixtures were made. ImageBind's `waveform -= waveform.mean()` is such a sum;
// a correctly rounded mean differs from it by several ulps, and near-silent mel bands turn those
// into ~3e-4 log-mel differences. See docs/reference/imagebind_preprocessing.md.
#pragma once
#include <cstdint>

namespace omnibind::preprocess {

float torch_float_sum(const float* x, int64_t n);

}  // namespace omnibind::preprocess
