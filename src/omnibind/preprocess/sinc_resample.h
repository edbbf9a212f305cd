// torchaudio.functional.resample (0.13, default "sinc_interpolation" = Hann-windowed sinc,
// lowpass_filter_width 6, rolloff 0.99): same kernel (rates reduced by their gcd, built in float32
// like torchaudio builds it for a float32 waveform), same padding, phase layout and output length
// ceil(n * new / orig). Only the kernel's non-zero taps are summed (in double).
#pragma once
#include <vector>

namespace omnibind::preprocess {

std::vector<float> resample_sinc(const std::vector<float>& x, int orig_freq, int new_freq);

}  // namespace omnibind::preprocess
