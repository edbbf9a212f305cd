// torchaudio.functional.resample (0.13, default "sinc_interpolation" = Hann-windowed sinc,
// lowpass_filter_width 6, rolloff 0.99): same kernel (rates reduced by their gcd, built in float32
// like torchaudio builds it for a float32 waveform), same padding, phase layout and output length
// ceil(n * new / orig). Accumulation is torchaudio's: one float32 fused multiply-add per tap in tap
// order (bit-identical outputs); only the taps torchaudio's clamp leaves at ~1e-23 are skipped.
#pragma once
#include <vector>

namespace omnibind::preprocess {

std::vector<float> resample_sinc(const std::vector<float>& x, int orig_freq, int new_freq);

}  // namespace omnibind::preprocess
