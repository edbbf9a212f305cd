#include "omnibind/preprocess/sinc_resample.h"

#include <ATen/ATen.h>
#include <immintrin.h>

#include <algorithm>
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

constexpr int kLanes = 8;  // phases computed side by side (one AVX2 register)

struct SincKernel {
  int orig = 0, fresh = 0, width = 0, taps = 0;  // rates reduced by their gcd
  std::vector<float> k;                          // [fresh][taps]
  std::vector<int> lo, hi;                       // used tap range per phase
  // Phases in groups of kLanes, taps interleaved: group g holds, for m in [glo[g], ghi[g]) (the
  // union of its phases' ranges), the kLanes taps k[g*kLanes + l][m] side by side (0 past `fresh`).
  std::vector<int> glo, ghi;
  std::vector<size_t> goff;  // offset of group g in `packed`
  std::vector<float> packed;
};

void pack_groups(SincKernel& s) {
  const int groups = (s.fresh + kLanes - 1) / kLanes;
  for (int g = 0; g < groups; ++g) {
    int lo = s.taps, hi = 0;
    for (int j = g * kLanes; j < std::min(s.fresh, (g + 1) * kLanes); ++j)
      if (s.hi[j] > s.lo[j]) lo = std::min(lo, s.lo[j]), hi = std::max(hi, s.hi[j]);
    if (hi <= lo) lo = hi = 0;
    s.glo.push_back(lo);
    s.ghi.push_back(hi);
    s.goff.push_back(s.packed.size());
    for (int m = lo; m < hi; ++m)
      for (int l = 0; l < kLanes; ++l) {
        const int j = g * kLanes + l;
        s.packed.push_back(j < s.fresh ? s.k[static_cast<size_t>(j) * s.taps + m] : 0.0f);
      }
  }
}

// The kernel torchaudio builds for a float32 waveform: its float32 ATen operations in its order
// (torch's vectorised sin/cos differ from libm's in the last bit for some taps, so a hand-written
// float32 loop is not enough for bit-identical outputs).
std::unique_ptr<SincKernel> build_kernel(int orig, int fresh) {
  auto s = std::make_unique<SincKernel>();
  const double base_freq = std::min(orig, fresh) * 0.99;
  s->orig = orig;
  s->fresh = fresh;
  s->width = static_cast<int>(std::ceil(kWidthParam * orig / base_freq));
  s->taps = 2 * s->width + orig;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor idx = at::arange(-s->width, s->width + orig, f32).view({1, -1}) / orig;
  at::Tensor t = at::arange(0, -fresh, -1, f32).view({-1, 1}) / fresh + idx;  // [fresh, taps]
  t *= base_freq;
  // Outside the lowpass width torchaudio clamps t to +-6, where its float32 window cos^2(pi/2)
  // is ~1.9e-15 and the tap ~1e-23: not exactly 0, but below float32 resolution of any output
  // (adding them changes outputs only in digital silence, at ~1e-26), so those taps are skipped:
  // this is what makes the polyphase sum sparse.
  const at::Tensor outside = (t <= -kWidthParam).logical_or(t >= kWidthParam).contiguous();
  t.clamp_(-kWidthParam, kWidthParam);
  const at::Tensor window = at::cos(t * M_PI / kWidthParam / 2).pow(2);
  t *= M_PI;
  const double scale = base_freq / orig;
  at::Tensor k = at::where(t == 0, at::scalar_tensor(1.0, f32), t.sin() / t);
  k *= window * scale;
  k = k.contiguous();
  s->k.assign(k.data_ptr<float>(), k.data_ptr<float>() + k.numel());
  s->lo.assign(fresh, s->taps);
  s->hi.assign(fresh, 0);
  const bool* out = outside.data_ptr<bool>();
  for (int j = 0; j < fresh; ++j)
    for (int m = 0; m < s->taps; ++m) {
      const size_t i = static_cast<size_t>(j) * s->taps + m;
      if (s->k[i] != 0.0f && !out[i]) {
        s->lo[j] = std::min(s->lo[j], m);
        s->hi[j] = std::max(s->hi[j], m + 1);
      }
    }
  pack_groups(*s);
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

// Every output is a float32 multiply-add chain over its taps in ascending order: exactly how
// torchaudio's conv1d accumulates (oneDNN's direct convolution and the im2col + sgemm path both run
// one fused multiply-add per tap, in tap order), so waveforms come out bit-identical. That matters:
// near-silent mel bands amplify single-ulp waveform differences ~1e4x. A phase group's union range
// adds a few of torchaudio's own ~1e-23 taps to some chains (as the reference does); only digital
// silence can notice (at ~1e-26).

// Output i = k * fresh + j reads the input padded with `width` zeros in front: taps m of phase j
// multiply x[k * orig + m - width]. Out-of-range taps would add fma(w, 0, acc) = acc: skipped.
void apply_scalar(const SincKernel& s, const float* x, int64_t n, float* out, int64_t target, int64_t k, int j) {
  const int64_t i = k * s.fresh + j;
  if (i >= target) return;
  const int64_t base = k * s.orig - s.width;
  const int64_t a = std::max<int64_t>(s.lo[j], -base), b = std::min<int64_t>(s.hi[j], n - base);
  const float* kj = s.k.data() + static_cast<size_t>(j) * s.taps;
  float acc = 0.0f;
  for (int64_t m = a; m < b; ++m) acc = std::fmaf(kj[m], x[base + m], acc);
  out[i] = acc;
}

void apply_portable(const SincKernel& s, const float* x, int64_t n, float* out, int64_t target) {
  const int64_t frames = (target + s.fresh - 1) / s.fresh;
  for (int64_t k = 0; k < frames; ++k)
    for (int j = 0; j < s.fresh; ++j) apply_scalar(s, x, n, out, target, k, j);
}

__attribute__((target("avx2,fma"))) inline void store_lanes(float* dst, __m256 acc, int lanes) {
  alignas(32) float v[kLanes];
  _mm256_store_ps(v, acc);
  for (int l = 0; l < lanes; ++l) dst[l] = v[l];
}

// kLanes phases of one frame per register: the input sample is broadcast, the taps are contiguous.
// Two frames interleaved to hide the FMA latency.
__attribute__((target("avx2,fma")))
void apply_avx2(const SincKernel& s, const float* x, int64_t n, float* out, int64_t target) {
  const int64_t frames = (target + s.fresh - 1) / s.fresh;
  const int groups = static_cast<int>(s.glo.size());
  for (int g = 0; g < groups; ++g) {
    const int lo = s.glo[g], hi = s.ghi[g];
    const float* kg = s.packed.data() + s.goff[g];
    const int j0 = g * kLanes, lanes = std::min(kLanes, s.fresh - j0);
    auto inside = [&](int64_t k) {
      const int64_t base = k * s.orig - s.width;
      return base + lo >= 0 && base + hi <= n && k * s.fresh + j0 + lanes <= target;
    };
    int64_t k = 0;
    for (; k < frames; ++k) {
      if (!inside(k)) {
        for (int l = 0; l < lanes; ++l) apply_scalar(s, x, n, out, target, k, j0 + l);
        continue;
      }
      if (k + 1 < frames && inside(k + 1)) {
        const float* xa = x + k * s.orig - s.width;
        const float* xb = xa + s.orig;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
        for (int m = lo; m < hi; ++m) {
          const __m256 w = _mm256_loadu_ps(kg + static_cast<size_t>(m - lo) * kLanes);
          a = _mm256_fmadd_ps(w, _mm256_broadcast_ss(xa + m), a);
          b = _mm256_fmadd_ps(w, _mm256_broadcast_ss(xb + m), b);
        }
        store_lanes(out + k * s.fresh + j0, a, lanes);
        store_lanes(out + (k + 1) * s.fresh + j0, b, lanes);
        ++k;
        continue;
      }
      const float* xa = x + k * s.orig - s.width;
      __m256 a = _mm256_setzero_ps();
      for (int m = lo; m < hi; ++m)
        a = _mm256_fmadd_ps(_mm256_loadu_ps(kg + static_cast<size_t>(m - lo) * kLanes), _mm256_broadcast_ss(xa + m), a);
      store_lanes(out + k * s.fresh + j0, a, lanes);
    }
  }
}

void apply_kernel(const SincKernel& s, const float* x, int64_t n, float* out, int64_t target) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) apply_avx2(s, x, n, out, target);
  else apply_portable(s, x, n, out, target);
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
