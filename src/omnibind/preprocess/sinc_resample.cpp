#include "omnibind/preprocess/sinc_resample.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

constexpr int kWidthParam = 6;  // lowpass_filter_width

struct SincKernel {
  int orig = 0, fresh = 0, width = 0, taps = 0;  // rates reduced by their gcd
  std::vector<float> k;                          // [fresh][taps]
  std::vector<int> lo, hi;                       // used tap range per phase
};

// The kernel torchaudio builds for a float32 waveform, in float32 and in its operation order.
std::unique_ptr<SincKernel> build_kernel(int orig, int fresh) {
  auto s = std::make_unique<SincKernel>();
  const double base_freq = std::min(orig, fresh) * 0.99;
  s->orig = orig;
  s->fresh = fresh;
  s->width = static_cast<int>(std::ceil(kWidthParam * orig / base_freq));
  s->taps = 2 * s->width + orig;
  s->k.resize(static_cast<size_t>(fresh) * s->taps);
  s->lo.assign(fresh, s->taps);
  s->hi.assign(fresh, 0);
  const float basef = static_cast<float>(base_freq);
  const float scale = static_cast<float>(base_freq / orig);
  const float pi = static_cast<float>(M_PI);
  const float lw = static_cast<float>(kWidthParam);
  for (int j = 0; j < fresh; ++j) {
    const float tj = static_cast<float>(-j) / static_cast<float>(fresh);
    for (int m = 0; m < s->taps; ++m) {
      const float idx = static_cast<float>(m - s->width) / static_cast<float>(orig);
      float t = (tj + idx) * basef;
      // Outside the lowpass width torchaudio clamps t to +-6, where its float32 window cos^2(pi/2)
      // is ~1.9e-15 and the tap ~1e-23: not exactly 0, but below float32 resolution of any output,
      // so those taps are skipped (this is what makes the polyphase sum sparse).
      const bool outside = t <= -lw || t >= lw;
      t = std::min(std::max(t, -lw), lw);
      const float c = std::cos(t * pi / lw / 2.0f);
      const float window = c * c;
      const float tp = t * pi;
      const float sinc = tp == 0.0f ? 1.0f : std::sin(tp) / tp;
      const float v = sinc * (window * scale);
      s->k[static_cast<size_t>(j) * s->taps + m] = v;
      if (v != 0.0f && !outside) {
        s->lo[j] = std::min(s->lo[j], m);
        s->hi[j] = std::max(s->hi[j], m + 1);
      }
    }
  }
  return s;
}

// Built once per rate pair (a 44.1 kHz kernel is 160 x 475 cos/sin evaluations).
const SincKernel& kernel_for(int orig, int fresh) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::unique_ptr<SincKernel>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{orig, fresh}];
  if (!slot) slot = build_kernel(orig, fresh);
  return *slot;
}

// AVX2 clone picked at load time (ifunc); the default clone runs anywhere. Same arithmetic in both
// (the avx2 target does not enable FMA, so no multiply-add is fused differently).
__attribute__((target_clones("avx2", "default")))
void apply_kernel(const SincKernel& s, const float* x, int64_t n, float* out, int64_t target) {
  // Output i = k * fresh + j reads the input padded with `width` zeros in front:
  // taps m of phase j multiply x[k * orig + m - width].
  for (int64_t i = 0; i < target; ++i) {
    const int64_t k = i / s.fresh;
    const int j = static_cast<int>(i - k * s.fresh);
    const int64_t base = k * s.orig - s.width;
    int64_t m0 = s.lo[j], m1 = s.hi[j];
    if (base + m0 < 0) m0 = -base;
    if (base + m1 > n) m1 = n - base;
    const float* kj = s.k.data() + static_cast<size_t>(j) * s.taps + m0;
    const float* xs = x + (base + m0);
    const int64_t len = m1 - m0;
    // Four partial sums in double: breaks the add latency chain; the order differs from
    // torchaudio's float32 conv1d anyway, and double keeps us within float32 rounding of the sum.
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    int64_t m = 0;
    for (; m + 4 <= len; m += 4) {
      a0 += static_cast<double>(kj[m]) * xs[m];
      a1 += static_cast<double>(kj[m + 1]) * xs[m + 1];
      a2 += static_cast<double>(kj[m + 2]) * xs[m + 2];
      a3 += static_cast<double>(kj[m + 3]) * xs[m + 3];
    }
    for (; m < len; ++m) a0 += static_cast<double>(kj[m]) * xs[m];
    out[i] = static_cast<float>((a0 + a1) + (a2 + a3));
  }
}

}  // namespace

std::vector<float> resample_sinc(const std::vector<float>& x, int orig_freq, int new_freq) {
  require(orig_freq > 0 && new_freq > 0, "resample: sample rates must be positive");
  if (orig_freq == new_freq) return x;
  const int g = std::gcd(orig_freq, new_freq);
  const SincKernel& s = kernel_for(orig_freq / g, new_freq / g);
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t target = (static_cast<int64_t>(s.fresh) * n + s.orig - 1) / s.orig;  // ceil(new * n / orig)
  std::vector<float> out(static_cast<size_t>(target));
  apply_kernel(s, x.data(), n, out.data(), target);
  return out;
}

}  // namespace omnibind::preprocess
