// librosa's default resampler ('soxr_hq') = python-soxr 0.3.7 `resample(x, in, out, quality='HQ')`
// over libsoxr, issuing the same libsoxr calls in the same order (cysoxr_divide_proc): soxr_create
// with float32 in/out, soxr_quality_spec(SOXR_HQ, 0) and the default runtime; input fed in chunks
// of int(48000 * in / out) frames; one flush with a NULL input; output capped at
// ceil(n * out / in) samples (computed in double). Debian's libsoxr 0.1.3 reproduces the bundled
// build of the python wheels bit for bit on the wavcaps/clap fixtures.
#pragma once
#include <cstdint>
#include <vector>

namespace omnibind::preprocess {

// python-soxr's output cap: ceil(n * out_rate / in_rate), the product taken first, in double.
int64_t soxr_output_capacity(int64_t n, double in_rate, double out_rate);

// Mono float32 samples x[0..n) at in_rate -> out_rate. Returns what libsoxr produced (at most
// soxr_output_capacity samples; librosa then fixes the length, see audio_waveform.h).
// Throws std::runtime_error when libsoxr reports an error (internal, not user input); InputError
// when a rate is not positive.
std::vector<float> soxr_resample_hq(const float* x, int64_t n, double in_rate, double out_rate);

}  // namespace omnibind::preprocess
