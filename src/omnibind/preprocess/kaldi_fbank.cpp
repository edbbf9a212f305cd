#include "omnibind/preprocess/kaldi_fbank.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

constexpr int kWindow = 400, kShift = 160, kFft = 512, kBins = 257, kMel = 128;

// Kaldi mel filters [257, 128] (transposed for the mm) as torchaudio's get_mel_banks computes them:
// its float32 ATen operations in its order (torch's vectorised log differs from libm's in the last
// bit for some bins), the Nyquist row 0 (torchaudio pads the 256-bin bank with a zero column).
at::Tensor make_mel_banks_t() {
  const double mel_low = 1127.0 * std::log(1.0 + 20.0 / 700.0);    // mel_scale_scalar, in double
  const double mel_high = 1127.0 * std::log(1.0 + 8000.0 / 700.0);
  const double delta = (mel_high - mel_low) / (kMel + 1);
  const at::Tensor bin = at::arange(kMel, at::kLong).unsqueeze(1);
  const at::Tensor left = mel_low + bin * delta;
  const at::Tensor center = mel_low + (bin + 1.0) * delta;
  const at::Tensor right = mel_low + (bin + 2.0) * delta;
  const at::Tensor freq = 31.25 * at::arange(static_cast<double>(kBins - 1), at::TensorOptions().dtype(at::kFloat));
  const at::Tensor mel = (1127.0 * (1.0 + freq / 700.0).log()).unsqueeze(0);
  const at::Tensor up = (mel - left) / (center - left);
  const at::Tensor down = (right - mel) / (right - center);
  const at::Tensor banks = at::max(at::zeros({1}), at::min(up, down));           // [128, 256]
  return at::constant_pad_nd(banks, {0, 1}, 0).t().contiguous();                  // [257, 128]
}

// torchaudio's float32 operations, in its order, through the same ATen kernels (see the header).
struct FbankTables {
  at::Tensor banks_t;  // [257, 128] = mel banks (Nyquist column 0), transposed for the mm
  at::Tensor window;   // [400] torch.hann_window(400, periodic=False) in float32
  at::Tensor eps;      // float32 epsilon, the log floor
  FbankTables() {
    banks_t = make_mel_banks_t();
    window = at::hann_window(kWindow, /*periodic=*/false, at::TensorOptions().dtype(at::kFloat));
    eps = at::scalar_tensor(std::numeric_limits<float>::epsilon(), at::kFloat);
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
  // Read-only view of the caller's samples: every op below writes fresh memory.
  const at::Tensor wave = at::from_blob(const_cast<float*>(samples), {n}, at::kFloat);
  const at::Tensor frame = wave.as_strided({frames, kWindow}, {kShift, 1});
  const at::Tensor x = frame - frame.mean(1, /*keepdim=*/true);  // remove_dc_offset
  // Pre-emphasis x[i] - 0.97 * x[i-1] with x[-1] = x[0] (replicate pad); the product is elementwise,
  // so scaling first and subtracting shifted columns is the same float32 arithmetic, without a cat.
  const at::Tensor scaled = 0.97 * x;
  at::Tensor y = at::empty({frames, kWindow}, at::kFloat);
  at::Tensor y0 = y.narrow(1, 0, 1), y1 = y.narrow(1, 1, kWindow - 1);
  at::sub_out(y0, x.narrow(1, 0, 1), scaled.narrow(1, 0, 1));
  at::sub_out(y1, x.narrow(1, 1, kWindow - 1), scaled.narrow(1, 0, kWindow - 1));
  at::Tensor padded = at::zeros({frames, kFft}, at::kFloat);  // window, then zero-pad to 512
  at::Tensor head = padded.narrow(1, 0, kWindow);
  at::mul_out(head, y, t.window);
  const at::Tensor power = at::fft_rfft(padded).abs().pow(2.0).contiguous();  // [frames, 257]
  // The mm stays OpenBLAS's sgemm: a per-output FMA chain in bin order matches it on only ~97 % of
  // values (its kernel's accumulation order differs), and these bands amplify any ulp.
  return at::mm(power, t.banks_t).max(t.eps).log();
}

}  // namespace omnibind::preprocess
