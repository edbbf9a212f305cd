// python-soxr 0.3.7 resample() for 1-D float32 input, over the system libsoxr.
#include "omnibind/preprocess/audio_soxr_resample.h"

#include <soxr.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {

int64_t soxr_output_capacity(int64_t n, double in_rate, double out_rate) {
  // cysoxr: `size_t olen = np.ceil(ilen * out_rate / in_rate)` (C double arithmetic, left to right).
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) * out_rate / in_rate));
}

std::vector<float> soxr_resample_hq(const float* x, int64_t n, double in_rate, double out_rate) {
  require(in_rate > 0 && out_rate > 0, "soxr resample: sample rates must be positive (got " +
                                           std::to_string(in_rate) + " -> " + std::to_string(out_rate) + ")");
  const size_t ilen = static_cast<size_t>(n);
  const size_t olen = static_cast<size_t>(soxr_output_capacity(n, in_rate, out_rate));
  // `cdef size_t chunk_len = int(48000 * in_rate / out_rate)`: Python int() of a double, truncation.
  // (At least 1: a zero chunk would never advance; unreachable for integer rates <= 48 kHz * in.)
  size_t chunk_len = static_cast<size_t>(48000.0 * in_rate / out_rate);
  if (chunk_len == 0) chunk_len = 1;

  soxr_error_t err = nullptr;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_t s = soxr_create(in_rate, out_rate, 1, &err, &io, &q, nullptr);
  if (err != nullptr) throw std::runtime_error(std::string("libsoxr: soxr_create failed: ") + err);
  struct Deleter {
    soxr_t s;
    ~Deleter() { soxr_delete(s); }
  } deleter{s};

  std::vector<float> y(olen == 0 ? 1 : olen, 0.0f);  // a valid pointer even when olen == 0
  size_t out_pos = 0;
  size_t idx = 0;
  size_t odone = 0;
  auto check = [](soxr_error_t e) {
    if (e != nullptr) throw std::runtime_error(std::string("libsoxr: soxr_process failed: ") + e);
  };
  // The same calls in the same order as cysoxr_divide_proc (its while / last chunk / flush).
  while (idx + chunk_len < ilen) {
    check(soxr_process(s, x + idx, chunk_len, nullptr, y.data() + out_pos, olen - out_pos, &odone));
    out_pos += odone;
    idx += chunk_len;
  }
  if (idx < ilen) {
    check(soxr_process(s, x + idx, ilen - idx, nullptr, y.data() + out_pos, olen - out_pos, &odone));
    out_pos += odone;
  }
  if (out_pos < olen) {
    check(soxr_process(s, nullptr, 0, nullptr, y.data() + out_pos, olen - out_pos, &odone));
    out_pos += odone;
  }
  y.resize(out_pos);
  return y;
}

}  // namespace omnibind::preprocess
