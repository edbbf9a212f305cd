// torchlibrosa Spectrogram / LogmelFilterBank: the reference's ATen calls, in its order.
#include "omnibind/preprocess/torchlibrosa_logmel.h"

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <limits>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

std::string shape_of(const at::Tensor& t) {
  if (!t.defined()) return "missing";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

at::Tensor as_f32(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t.contiguous() : t.to(at::kFloat).contiguous(); }

}  // namespace

TorchlibrosaWeights checked_torchlibrosa_weights(TorchlibrosaWeights w, const std::string& what) {
  const auto is_float = [](const at::Tensor& t) { return t.defined() && at::isFloatingType(t.scalar_type()); };
  require(is_float(w.conv_real) && is_float(w.conv_imag) && is_float(w.melW),
          what + ": torchlibrosa front end needs float conv_real, conv_imag and melW tensors");
  const at::Tensor& r = w.conv_real;
  require(r.dim() == 3 && r.size(1) == 1 && r.size(2) >= 2 && r.size(0) == r.size(2) / 2 + 1,
          what + ": STFT matrix conv_real has shape " + shape_of(r) + ", expected [n_fft/2+1, 1, n_fft]");
  require(w.conv_imag.sizes() == r.sizes(),
          what + ": STFT matrix conv_imag has shape " + shape_of(w.conv_imag) + ", expected " + shape_of(r));
  require(w.melW.dim() == 2 && w.melW.size(0) == r.size(0) && w.melW.size(1) >= 1,
          what + ": mel matrix melW has shape " + shape_of(w.melW) + ", expected [" + std::to_string(r.size(0)) +
              ", n_mels]");
  return {as_f32(w.conv_real), as_f32(w.conv_imag), as_f32(w.melW)};
}

int64_t torchlibrosa_num_frames(int64_t n, int64_t hop) { return n / hop + 1; }

at::Tensor torchlibrosa_power(const at::Tensor& waveform, const TorchlibrosaWeights& w, int64_t hop) {
  require(waveform.defined() && (waveform.dim() == 1 || waveform.dim() == 2),
          "torchlibrosa: waveform has shape " + shape_of(waveform) + ", expected [N] or [B, N]");
  require(hop > 0, "torchlibrosa: hop must be positive");
  const int64_t n_fft = w.conv_real.size(2);
  const int64_t pad = n_fft / 2;
  const int64_t n = waveform.size(-1);
  require(n > pad, "torchlibrosa: waveform of " + std::to_string(n) + " samples is too short for reflect padding of " +
                       std::to_string(pad) + " (needs more than " + std::to_string(pad) + ")");
  const bool batched = waveform.dim() == 2;
  const at::Tensor x2 = batched ? waveform.to(at::kFloat) : waveform.to(at::kFloat).unsqueeze(0);  // [B, N]
  // STFT.forward: x = input[:, None, :]; F.pad(x, (n_fft//2, n_fft//2), mode='reflect').
  const at::Tensor x = at::reflection_pad1d(x2.unsqueeze(1), {pad, pad});  // [B, 1, N + n_fft]
  // Conv1d(1, F, n_fft, stride hop, no bias) twice, then [:, None].transpose(2, 3), re^2 + im^2.
  const std::array<int64_t, 1> stride{hop}, no_pad{0}, dilation{1};
  const at::Tensor real = at::conv1d(x, w.conv_real, at::Tensor(), stride, no_pad, dilation, 1).unsqueeze(1).transpose(2, 3);
  const at::Tensor imag = at::conv1d(x, w.conv_imag, at::Tensor(), stride, no_pad, dilation, 1).unsqueeze(1).transpose(2, 3);
  const at::Tensor spec = at::pow(real, 2) + at::pow(imag, 2);  // [B, 1, T, F]
  return batched ? spec : spec.squeeze(0).squeeze(0);
}

at::Tensor torchlibrosa_power_to_logmel(const at::Tensor& power, const at::Tensor& melW) {
  // LogmelFilterBank.forward: matmul(input, melW); power_to_db: 10 * log10(clamp(x, amin, inf))
  // minus 10 * log10(max(amin, ref = 1)) = 0 (subtracting 0.0 changes no float32 value).
  const at::Tensor mel = at::matmul(power, melW);
  return 10.0 * at::log10(at::clamp(mel, 1e-10, std::numeric_limits<double>::infinity()));
}

at::Tensor torchlibrosa_logmel(const at::Tensor& waveform, const TorchlibrosaWeights& w, int64_t hop) {
  // Always through the reference's batched layout [B, 1, T, F] (a transposed view), so the matmul
  // sees the same shapes and strides as the reference's.
  const bool batched = waveform.dim() == 2;
  const at::Tensor power = torchlibrosa_power(batched ? waveform : waveform.unsqueeze(0), w, hop);
  const at::Tensor logmel = torchlibrosa_power_to_logmel(power, w.melW).squeeze(1);  // [B, T, n_mels]
  return batched ? logmel : logmel.squeeze(0);
}

}  // namespace omnibind::preprocess
