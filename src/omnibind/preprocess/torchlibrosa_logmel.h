// torchlibrosa 0.1.0 Spectrogram + LogmelFilterBank as WavCaps' HTSAT (audio_feats_extractor) and
// CLAP_M's HTSAT (spectrogram_extractor / logmel_extractor) run them in eval:
//   x [B, N] -> reflect pad n_fft/2 on both sides (torch F.pad 'reflect': edge not repeated)
//   -> Conv1d with the checkpoint's float32 DFT matrices conv_real / conv_imag [F, 1, n_fft]
//      (cos / -sin x periodic Hann, F = n_fft/2 + 1), stride hop -> real^2 + imag^2
//   -> @ melW [F, n_mels] (librosa Slaney filters, from the checkpoint)
//   -> 10 * log10(clamp(x, 1e-10)) (ref 1.0: the subtracted term is 0), no top_db.
// The same ATen calls as the reference, in its order (same Debian libtorch 1.13): on the fixtures
// the STFT power is bit-identical and the log-mel within 1 float32 ulp (<= 1.6e-5 dB).
// An FFT STFT (float32 rfft with the checkpoint's window) was tried and dropped: it differs by up
// to 0.035 dB at low-energy bins on the fixtures, above their 1e-3 dB tolerance
// (docs/reference/audio_frontends.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace omnibind::preprocess {

// The three constant tensors a torchlibrosa front end keeps in its checkpoint.
struct TorchlibrosaWeights {
  at::Tensor conv_real;  // [n_fft/2 + 1, 1, n_fft] float32  (...stft.conv_real.weight)
  at::Tensor conv_imag;  // [n_fft/2 + 1, 1, n_fft] float32  (...stft.conv_imag.weight)
  at::Tensor melW;       // [n_fft/2 + 1, n_mels]   float32  (...melW)
};

// InputError naming `what` (e.g. the checkpoint) unless the shapes agree as above (float tensors;
// converted to float32 contiguous copies when needed).
TorchlibrosaWeights checked_torchlibrosa_weights(TorchlibrosaWeights w, const std::string& what);

// Frames of a centred STFT: n / hop + 1.
int64_t torchlibrosa_num_frames(int64_t n, int64_t hop);

// Power spectrogram: [B, N] or [N] float32 -> [B, 1, T, F] (reference layout, a transposed view)
// or [T, F]. InputError when N <= n_fft / 2 (reflect padding needs more samples).
at::Tensor torchlibrosa_power(const at::Tensor& waveform, const TorchlibrosaWeights& w, int64_t hop);

// Log-mel: [B, N] -> [B, T, n_mels], or [N] -> [T, n_mels], float32 (time, mel).
at::Tensor torchlibrosa_logmel(const at::Tensor& waveform, const TorchlibrosaWeights& w, int64_t hop);

// The last two stages alone: power [..., F] -> log-mel [..., n_mels].
at::Tensor torchlibrosa_power_to_logmel(const at::Tensor& power, const at::Tensor& melW);

}  // namespace omnibind::preprocess
