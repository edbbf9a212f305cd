#include "omnibind/preprocess/sinc_resample.h"

#include <cmath>
#include <cstdint>
#include <numeric>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {

// AVX2 clone picked at load time (ifunc); the default clone runs anywhere. Same arithmetic in both
// (the avx2 target does not enable FMA, so no multiply-add is fused differently).
__attribute__((target_clones("avx2", "default")))
std::vector<float> resample_sinc(const std::vector<float>& x, int orig_freq, int new_freq) {
  require(orig_freq > 0 && new_freq > 0, "resample: sample rates must be positive");
  if (orig_freq == new_freq) return x;
  const int g = std::gcd(orig_freq, new_freq);
  const int orig = orig_freq / g, fresh = new_freq / g;
  constexpr int kWidthParam = 6;  // lowpass_filter_width
  const double base_freq = std::min(orig, fresh) * 0.99;
  const int width = static_cast<int>(std::ceil(kWidthParam * orig / base_freq));
  const int taps = 2 * width + orig;

  // kernel[j][m], j = output phase, m = tap; float32 arithmetic in torchaudio's order.
  std::vector<float> kernel(static_cast<size_t>(fresh) * taps);
  std::vector<int> lo(fresh, taps), hi(fresh, 0);  // non-zero tap range per phase
  const float basef = static_cast<float>(base_freq);
  const float scale = static_cast<float>(base_freq / orig);
  const float pi = static_cast<float>(M_PI);
  for (int j = 0; j < fresh; ++j) {
    const float tj = static_cast<float>(-j) / static_cast<float>(fresh);
    for (int m = 0; m < taps; ++m) {
      const float idx = static_cast<float>(m - width) / static_cast<float>(orig);
      float t = (tj + idx) * basef;
      // Outside the lowpass width torchaudio clamps t to +-6, where its float32 window cos^2(pi/2)
      // is ~1.9e-15 and the tap ~1e-23: not exactly 0 there, but below float32 resolution of any
      // output, so those taps are skipped (this is what makes the polyphase sum sparse).
      const bool outside = t <= -static_cast<float>(kWidthParam) || t >= static_cast<float>(kWidthParam);
      t = std::min(std::max(t, -static_cast<float>(kWidthParam)), static_cast<float>(kWidthParam));
      const float c = std::cos(t * pi / static_cast<float>(kWidthParam) / 2.0f);
      const float window = c * c;
      const float tp = t * pi;
      const float sinc = tp == 0.0f ? 1.0f : std::sin(tp) / tp;
      const float k = sinc * (window * scale);
      kernel[static_cast<size_t>(j) * taps + m] = k;
      if (k != 0.0f && !outside) {
        lo[j] = std::min(lo[j], m);
        hi[j] = std::max(hi[j], m + 1);
      }
    }
  }

  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t target = (static_cast<int64_t>(fresh) * n + orig - 1) / orig;  // ceil(new * n / orig)
  std::vector<float> out(static_cast<size_t>(target));
  // Output sample i = k * fresh + j reads padded input [k*orig, k*orig + taps) with `width` zeros in
  // front: input index = k*orig + m - width.
  for (int64_t i = 0; i < target; ++i) {
    const int64_t k = i / fresh;
    const int j = static_cast<int>(i - k * fresh);
    const float* kj = kernel.data() + static_cast<size_t>(j) * taps;
    const int64_t base = k * orig - width;
    int m0 = lo[j], m1 = hi[j];
    if (base + m0 < 0) m0 = static_cast<int>(-base);
    if (base + m1 > n) m1 = static_cast<int>(n - base);
    const float* xs = x.data() + base;
    // Four partial sums: breaks the add latency chain (the order differs from torchaudio's float32
    // conv anyway; double keeps the result within float32 rounding of the exact sum).
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    int m = m0;
    for (; m + 4 <= m1; m += 4) {
      a0 += static_cast<double>(kj[m]) * xs[m];
      a1 += static_cast<double>(kj[m + 1]) * xs[m + 1];
      a2 += static_cast<double>(kj[m + 2]) * xs[m + 2];
      a3 += static_cast<double>(kj[m + 3]) * xs[m + 3];
    }
    for (; m < m1; ++m) a0 += static_cast<double>(kj[m]) * xs[m];
    out[static_cast<size_t>(i)] = static_cast<float>((a0 + a1) + (a2 + a3));
  }
  return out;
}

}  // namespace omnibind::preprocess
