#include "omnibind/preprocess/torch_float_sum.h"

#include <algorithm>
#include <bit>

namespace omnibind::preprocess {

float torch_float_sum(const float* x, int64_t n) {
  constexpr int kLanes = 8;   // Vectorized<float> on AVX2
  constexpr int kIlp = 4;     // vectors summed side by side
  constexpr int kLevels = 4;  // cascade depth
  if (n < kLanes) {  // torch's scalar path: 4 interleaved partial sums, the tail into the first
    float p[kIlp] = {};
    const int64_t whole = n / kIlp * kIlp;
    for (int64_t i = 0; i < whole; ++i) p[i % kIlp] += x[i];
    for (int64_t i = whole; i < n; ++i) p[0] += x[i];
    for (int k = 1; k < kIlp; ++k) p[0] += p[k];
    return 0.0f + p[0];
  }
  const int64_t vectors = n / kLanes;
  const int64_t rows = vectors / kIlp;  // rows of kIlp vectors
  const int64_t log2 = rows <= 2 ? 1 : std::bit_width(static_cast<uint64_t>(rows - 1));
  const int64_t level_power = std::max<int64_t>(4, log2 / kLevels);
  const int64_t level_step = int64_t{1} << level_power, level_mask = level_step - 1;

  float acc[kLevels][kIlp][kLanes] = {};
  auto add_row = [&](int64_t r) {
    const float* p = x + r * kIlp * kLanes;
    for (int k = 0; k < kIlp; ++k)
      for (int l = 0; l < kLanes; ++l) acc[0][k][l] += p[k * kLanes + l];
  };
  int64_t i = 0;
  while (i + level_step <= rows) {
    for (int64_t j = 0; j < level_step; ++j, ++i) add_row(i);
    for (int j = 1; j < kLevels; ++j) {  // carry the finished chunk one level up
      for (int k = 0; k < kIlp; ++k)
        for (int l = 0; l < kLanes; ++l) acc[j][k][l] += acc[j - 1][k][l], acc[j - 1][k][l] = 0.0f;
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < rows; ++i) add_row(i);
  for (int j = 1; j < kLevels; ++j)
    for (int k = 0; k < kIlp; ++k)
      for (int l = 0; l < kLanes; ++l) acc[0][k][l] += acc[j][k][l];
  float* v = acc[0][0];  // the first accumulator vector collects the rest
  for (int64_t r = rows * kIlp; r < vectors; ++r)
    for (int l = 0; l < kLanes; ++l) v[l] += x[r * kLanes + l];
  for (int k = 1; k < kIlp; ++k)
    for (int l = 0; l < kLanes; ++l) v[l] += acc[0][k][l];
  float total = 0.0f;
  for (int64_t r = vectors * kLanes; r < n; ++r) total += x[r];
  for (int l = 0; l < kLanes; ++l) total += v[l];
  return total;
}

}  // namespace omnibind::preprocess
