#include "omnibind/preprocess/kaldi_fbank.h"

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <complex>
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

// In-place iterative radix-2 complex FFT of size kFft/2 used as a real FFT of size kFft.
struct RealFft512 {
  static constexpr int N = kFft, H = kFft / 2;
  std::array<std::complex<double>, H> tw;    // e^{-2 pi i k / H}
  std::array<std::complex<double>, H> post;  // e^{-2 pi i k / N}
  std::array<int, H> rev;
  RealFft512() {
    int bits = 0;
    while ((1 << bits) < H) ++bits;
    for (int i = 0; i < H; ++i) {
      int r = 0;
      for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
      rev[i] = r;
      tw[i] = std::polar(1.0, -2.0 * M_PI * i / H);
      post[i] = std::polar(1.0, -2.0 * M_PI * i / N);
    }
  }
  // x[0..N) real -> power[0..N/2] = |X_k|^2.
  void power(const double* x, double* power_out) const {
    std::array<std::complex<double>, H> z;
    for (int i = 0; i < H; ++i) z[rev[i]] = {x[2 * i], x[2 * i + 1]};
    for (int len = 2; len <= H; len <<= 1) {
      const int step = H / len;
      for (int i = 0; i < H; i += len)
        for (int k = 0; k < len / 2; ++k) {
          const std::complex<double> u = z[i + k], v = z[i + k + len / 2] * tw[k * step];
          z[i + k] = u + v;
          z[i + k + len / 2] = u - v;
        }
    }
    // Split the half-size transform into the even/odd parts of the real one.
    for (int k = 0; k <= H; ++k) {
      const std::complex<double> a = z[k % H], b = std::conj(z[(H - k) % H]);
      const std::complex<double> even = 0.5 * (a + b);
      const std::complex<double> odd = std::complex<double>(0, -0.5) * (a - b);
      const std::complex<double> w = k == H ? std::complex<double>(-1.0, 0.0) : post[k];
      power_out[k] = std::norm(even + w * odd);
    }
  }
};

struct FbankTables {
  std::vector<float> banks = make_mel_banks();
  std::array<double, kWindow> hann;  // symmetric: 0.5 - 0.5 cos(2 pi n / (N - 1))
  RealFft512 fft;
  FbankTables() {
    for (int n = 0; n < kWindow; ++n) hann[n] = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / (kWindow - 1));
  }
};

const FbankTables& tables() {
  static const FbankTables t;
  return t;
}

}  // namespace

int64_t kaldi_num_frames(int64_t n) { return n < kWindow ? 0 : 1 + (n - kWindow) / kShift; }

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
      for (int k = 0; k < kBins - 1; ++k) e += w[k] * power[k];
      const float ef = static_cast<float>(e);
      o[f * kMel + b] = std::log(std::max(ef, eps));
    }
  }
  return out;
}

}  // namespace omnibind::preprocess
