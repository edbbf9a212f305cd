#include "omnibind/preprocess/clip_sampler.h"

#include <cmath>

namespace omnibind::preprocess {

std::vector<std::pair<int64_t, int64_t>> constant_clip_bounds(int64_t num_samples, int sample_rate,
                                                              int clip_seconds, int clips_per_video) {
  const double duration = static_cast<double>(num_samples) / static_cast<double>(sample_rate);
  double latest = duration - static_cast<double>(clip_seconds);  // a float in Python too
  if (latest < 0.0) latest = 0.0;
  // latest = mant * 2^exp exactly (mant a 53-bit integer).
  int exp2 = 0;
  const double frac = std::frexp(latest, &exp2);
  const auto mant = static_cast<__int128>(std::ldexp(frac, 53));
  exp2 -= 53;
  const int divisor = clips_per_video > 1 ? clips_per_video - 1 : 1;
  std::vector<std::pair<int64_t, int64_t>> bounds;
  for (int k = 0; k < clips_per_video; ++k) {
    // floor(mant * 2^exp2 * k / divisor * rate): numerator over divisor * 2^-exp2.
    __int128 num = mant * k * sample_rate;
    __int128 den = divisor;
    if (exp2 >= 0) {
      num <<= exp2;
    } else if (-exp2 < 100) {
      den <<= -exp2;
    } else {
      num = 0;
    }
    const int64_t start = static_cast<int64_t>(num / den);  // non-negative: truncation = floor
    // end = start_time + clip_seconds exactly, so int(end * rate) = start + clip_seconds * rate.
    bounds.emplace_back(start, start + static_cast<int64_t>(clip_seconds) * sample_rate);
  }
  return bounds;
}

}  // namespace omnibind::preprocess
