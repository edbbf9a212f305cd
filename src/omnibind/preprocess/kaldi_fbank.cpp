#include "omnibind/preprocess/kaldi_fbank.h"

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

constexpr int kWindow = 400, kShift = 160, kFft = 512, kBins = 257, kMel = 128;

// Kaldi mel filters [128][257] exactly as torchaudio's get_mel_banks computes them (float32 ops),
// with the Nyquist column set to 0 (torchaudio pads the 256-column bank with a zero column).
std::vector<float> make_mel_banks() {
  const double mel_low = 1127.0 * std::log(1.0 + 20.0 / 700.0);
  const double mel_high = 1127.0 * std::log(1.0 + 8000.0 / 700.0);
  const double delta = (mel_high - mel_low) / (kMel + 1);
  const float lowf = static_cast<float>(mel_low), deltaf = static_cast<float>(delta);
  std::vector<float> banks(static_cast<size_t>(kMel) * kBins, 0.0f);
  for (int b = 0; b < kMel; ++b) {
    const float left = lowf + static_cast<float>(b) * deltaf;
    const float center = lowf + (static_cast<float>(b) + 1.0f) * deltaf;
    const float right = lowf + (static_cast<float>(b) + 2.0f) * deltaf;
    for (int f = 0; f < kBins - 1; ++f) {
      const float freq = 31.25f * static_cast<float>(f);
      const float mel = 1127.0f * std::log(1.0f + freq / 700.0f);
      const float up = (mel - left) / (center - left);
      const float down = (right - mel) / (right - center);
      banks[static_cast<size_t>(b) * kBins + f] = std::max(0.0f, std::min(up, down));
    }
  }
  return banks;
}

// Real FFT of size kFft via an iterative radix-2 complex FFT of size kFft/2 (plain real arithmetic:
// std::complex multiplication would go through the NaN-checking __muldc3 helper).
struct RealFft512 {
  static constexpr int N = kFft, H = kFft / 2;
  std::array<double, H> twr, twi;    // stage twiddles, contiguous per stage: stage `len` at [len/2 - 1 ..)
  std::array<double, H> postr, posti;  // e^{-2 pi i k / N}
  std::array<int, H> rev;
  RealFft512() {
    int bits = 0;
    while ((1 << bits) < H) ++bits;
    for (int i = 0; i < H; ++i) {
      int r = 0;
      for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
      rev[i] = r;
      postr[i] = std::cos(-2.0 * M_PI * i / N);
      posti[i] = std::sin(-2.0 * M_PI * i / N);
    }
    // Stage with butterfly span `len` uses e^{-2 pi i k / len}, k < len/2, stored from len/2 - 1 so
    // that the inner loop reads them contiguously (vectorisable).
    for (int len = 2; len <= H; len <<= 1)
      for (int k = 0; k < len / 2; ++k) {
        twr[len / 2 - 1 + k] = std::cos(-2.0 * M_PI * k / len);
        twi[len / 2 - 1 + k] = std::sin(-2.0 * M_PI * k / len);
      }
  }
  // x[0..N) real -> power[0..N/2] = |X_k|^2.
  void power(const double* x, double* power_out) const {
    std::array<double, H> zr, zi;
    for (int i = 0; i < H; ++i) {
      zr[rev[i]] = x[2 * i];
      zi[rev[i]] = x[2 * i + 1];
    }
    for (int len = 2; len <= H; len <<= 1) {
      const int half = len / 2;
      const double* wr = twr.data() + half - 1;
      const double* wi = twi.data() + half - 1;
      for (int i = 0; i < H; i += len) {
        double* ar = zr.data() + i;
        double* ai = zi.data() + i;
        double* br = ar + half;
        double* bi = ai + half;
        for (int k = 0; k < half; ++k) {
          const double vr = br[k] * wr[k] - bi[k] * wi[k], vi = br[k] * wi[k] + bi[k] * wr[k];
          br[k] = ar[k] - vr;
          bi[k] = ai[k] - vi;
          ar[k] += vr;
          ai[k] += vi;
        }
      }
    }
    // Split the half-size transform into the even/odd parts of the real one:
    // E = (Z_k + conj Z_{H-k}) / 2, O = -i (Z_k - conj Z_{H-k}) / 2, X_k = E + w^k O.
    for (int k = 0; k <= H; ++k) {
      const int p = k % H, q = (H - k) % H;
      const double ar = zr[p], ai = zi[p], br = zr[q], bi = -zi[q];
      const double er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
      const double or_ = 0.5 * (ai - bi), oi = -0.5 * (ar - br);
      const double wr = k == H ? -1.0 : postr[k], wi = k == H ? 0.0 : posti[k];
      const double xr = er + wr * or_ - wi * oi, xi = ei + wr * oi + wi * or_;
      power_out[k] = xr * xr + xi * xi;
    }
  }
};

struct FbankTables {
  std::vector<float> banks = make_mel_banks();
  std::array<int, kMel> lo{}, hi{};  // non-zero FFT-bin range of each triangle
  std::array<double, kWindow> hann;  // symmetric: 0.5 - 0.5 cos(2 pi n / (N - 1))
  RealFft512 fft;
  FbankTables() {
    for (int n = 0; n < kWindow; ++n) hann[n] = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / (kWindow - 1));
    for (int b = 0; b < kMel; ++b) {
      lo[b] = kBins;
      hi[b] = 0;
      for (int k = 0; k < kBins; ++k)
        if (banks[static_cast<size_t>(b) * kBins + k] != 0.0f) {
          lo[b] = std::min(lo[b], k);
          hi[b] = k + 1;
        }
      if (hi[b] == 0) lo[b] = 0;
    }
  }
};

const FbankTables& tables() {
  static const FbankTables t;
  return t;
}

}  // namespace

int64_t kaldi_num_frames(int64_t n) { return n < kWindow ? 0 : 1 + (n - kWindow) / kShift; }

// AVX2 clone picked at load time (ifunc); same IEEE operations as the default clone (no FMA).
__attribute__((target_clones("avx2", "default")))
at::Tensor kaldi_fbank_16k_128(const float* samples, int64_t n) {
  require(n >= kWindow, "audio clip of " + std::to_string(n) +
                            " samples at 16 kHz is shorter than one 25 ms fbank frame (400 samples)");
  const FbankTables& t = tables();
  const int64_t frames = kaldi_num_frames(n);
  at::Tensor out = at::empty({frames, kMel}, at::kFloat);
  float* o = out.data_ptr<float>();
  const float eps = std::numeric_limits<float>::epsilon();
  std::array<double, kFft> buf;
  std::array<double, kBins> power;
  for (int64_t f = 0; f < frames; ++f) {
    const float* s = samples + f * kShift;
    double mean = 0.0;
    for (int i = 0; i < kWindow; ++i) mean += s[i];
    mean /= kWindow;
    // Pre-emphasis on the DC-removed frame with the first sample repeated as its predecessor.
    double prev = s[0] - mean;
    for (int i = 0; i < kWindow; ++i) {
      const double cur = s[i] - mean;
      buf[i] = (cur - 0.97 * prev) * t.hann[i];
      prev = cur;
    }
    std::fill(buf.begin() + kWindow, buf.end(), 0.0);
    t.fft.power(buf.data(), power.data());
    for (int b = 0; b < kMel; ++b) {
      const float* w = t.banks.data() + static_cast<size_t>(b) * kBins;
      double e = 0.0;
      for (int k = t.lo[b]; k < t.hi[b]; ++k) e += w[k] * power[k];
      const float ef = static_cast<float>(e);
      o[f * kMel + b] = std::log(std::max(ef, eps));
    }
  }
  return out;
}

}  // namespace omnibind::preprocess
