// torchaudio.compliance.kaldi.fbank with the settings ImageBind uses: 16 kHz, 25 ms frames every
// 10 ms (400/160 samples, snip_edges), per-frame DC removal, pre-emphasis 0.97, symmetric Hann
// ("hanning") window, zero-padded 512-point FFT, power spectrum, Kaldi mel banks (128 bins,
// 20 Hz .. Nyquist, built in float32 as torchaudio builds them), log(max(e, float32 eps)),
// dither 0, no energy. Computed like torchaudio computes it for a float32 waveform: the same float32
// ATen operations in the same order (frame means, pre-emphasis, torch's own Hann window, pocketfft
// rfft, |X|^2, mm with the banks): bit-identical to the reference with the same libtorch. Every
// step matters: redoing any one of them in double moves near-silent bands by 4e-4 .. 2e-3.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace omnibind::preprocess {

// Frames a snip_edges framing yields: 0 when n < 400, else 1 + (n - 400) / 160.
int64_t kaldi_num_frames(int64_t num_samples);

// samples[0..n) at 16 kHz -> [frames, 128] float32. InputError when n < 400 (no complete frame).
at::Tensor kaldi_fbank_16k_128(const float* samples, int64_t n);

}  // namespace omnibind::preprocess
