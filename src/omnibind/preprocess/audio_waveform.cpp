// librosa.load, WavCaps' pad/crop and CLAP's quantisation / repeatpad / crop decisions.
#include "omnibind/preprocess/audio_waveform.h"

#include <algorithm>
#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/audio_soxr_resample.h"

namespace omnibind::preprocess {
namespace {

// numpy's float32 pairwise summation (the inner loop of np.add.reduce) of a[0], a[stride], ...
float numpy_pairwise_sum(const float* const* a, int64_t n) {
  if (n < 8) {
    float res = 0.0f;
    for (int64_t i = 0; i < n; ++i) res += *a[i];
    return res;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = *a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += *a[i + j];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += *a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

void require_finite(const std::vector<float>& y, const std::string& name) {
  for (const float v : y)
    require(std::isfinite(v), name + ": audio has non-finite samples (NaN or infinity); librosa refuses such buffers");
}

}  // namespace

std::vector<float> librosa_to_mono(const media::Audio& audio) {
  const size_t nch = audio.channels.size();
  if (nch == 0) return {};
  if (nch == 1) return audio.channels[0];
  // soundfile reads [frames, channels]; librosa transposes and np.mean reduces over channels, whose
  // samples are adjacent in memory: the add-reduce inner loop runs over the channels of one frame,
  // starting from the identity 0 (out = 0 + pairwise_sum(channels)), then divides by the count.
  const int64_t n = audio.frames();
  const float count = static_cast<float>(nch);
  std::vector<float> out(static_cast<size_t>(n));
  std::vector<const float*> ptrs(nch);
  for (int64_t i = 0; i < n; ++i) {
    for (size_t c = 0; c < nch; ++c) ptrs[c] = &audio.channels[c][static_cast<size_t>(i)];
    const float s = 0.0f + numpy_pairwise_sum(ptrs.data(), static_cast<int64_t>(nch));
    out[static_cast<size_t>(i)] = s / count;
  }
  return out;
}

int64_t librosa_resample_length(int64_t n, int orig_sr, int target_sr) {
  const double ratio = static_cast<double>(target_sr) / static_cast<double>(orig_sr);
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) * ratio));
}

std::vector<float> librosa_load(const media::Audio& audio, int target_sr, const std::string& name,
                                LibrosaLoadTrace* trace) {
  require(audio.sample_rate > 0, name + ": audio without a sample rate");
  require(!audio.channels.empty() && audio.frames() > 0, name + ": audio has no samples (zero length)");
  for (const auto& ch : audio.channels)
    require(static_cast<int64_t>(ch.size()) == audio.frames(), name + ": audio channels differ in length");
  for (const auto& ch : audio.channels) require_finite(ch, name);
  std::vector<float> mono = librosa_to_mono(audio);
  require_finite(mono, name);  // a float file near FLT_MAX can overflow the channel sum
  if (trace) {
    trace->mono_native = mono;
    trace->resampled = audio.sample_rate != target_sr;
    trace->soxr_samples = static_cast<int64_t>(mono.size());
  }
  if (audio.sample_rate == target_sr) return mono;
  const int64_t n = static_cast<int64_t>(mono.size());
  std::vector<float> y = soxr_resample_hq(mono.data(), n, audio.sample_rate, target_sr);
  if (trace) trace->soxr_samples = static_cast<int64_t>(y.size());
  // util.fix_length: zero-pad or truncate to the ratio-based length.
  y.resize(static_cast<size_t>(librosa_resample_length(n, audio.sample_rate, target_sr)), 0.0f);
  require(!y.empty(), name + ": audio too short to resample to " + std::to_string(target_sr) + " Hz (no samples)");
  return y;
}

void require_not_silent(const std::vector<float>& wave, const std::string& name) {
  for (const float v : wave)
    if (v != 0.0f) return;
  throw InputError(name + ": audio is silent (every sample is 0)");
}

std::vector<float> wavcaps_fit_length(std::vector<float> wave, int64_t clip_samples) {
  wave.resize(static_cast<size_t>(clip_samples), 0.0f);  // pad with zeros on the right / keep the first
  return wave;
}

std::vector<float> wavcaps_waveform(const media::Audio& audio, const std::string& name, const WavcapsAudioConfig& cfg,
                                    LibrosaLoadTrace* trace) {
  return wavcaps_fit_length(librosa_load(audio, cfg.sample_rate, name, trace), cfg.clip_samples);
}

std::vector<int16_t> clap_float32_to_int16(const std::vector<float>& wave) {
  std::vector<int16_t> q(wave.size());
  for (size_t i = 0; i < wave.size(); ++i) {
    const float c = std::min(std::max(wave[i], -1.0f), 1.0f);
    const float scaled = c * 32767.0f;              // float32 product (numpy value-based casting)
    q[i] = static_cast<int16_t>(std::trunc(scaled));  // astype(int16): toward zero
  }
  return q;
}

std::vector<float> clap_int16_to_float32(const std::vector<int16_t>& q) {
  std::vector<float> out(q.size());
  for (size_t i = 0; i < q.size(); ++i) out[i] = static_cast<float>(static_cast<double>(q[i]) / 32767.0);
  return out;
}

std::vector<float> clap_repeatpad(const std::vector<float>& wave, int64_t max_len) {
  const int64_t n = static_cast<int64_t>(wave.size());
  if (n == 0 || n >= max_len) return wave;
  // int(max_len / n) in double equals the integer quotient for these magnitudes.
  const int64_t repeat = max_len / n;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(max_len));
  for (int64_t r = 0; r < repeat; ++r) out.insert(out.end(), wave.begin(), wave.end());
  out.resize(static_cast<size_t>(max_len), 0.0f);
  return out;
}

std::array<ClapChunkRange, 3> clap_fusion_chunk_ranges(int64_t total_frames, int64_t chunk_frames) {
  const int64_t k = std::max<int64_t>(total_frames - chunk_frames + 1, 0);
  std::array<ClapChunkRange, 3> r{};
  int64_t first = 0;
  for (int i = 0; i < 3; ++i) {
    const int64_t count = k / 3 + (i < k % 3 ? 1 : 0);  // np.array_split: the first k % 3 get one more
    r[i] = {first, count};
    first += count;
  }
  for (int i = 1; i < 3; ++i)
    if (r[i].count == 0) r[i] = {0, 1};  // the reference's `ranges[i] = [0]`
  return r;
}

std::array<int64_t, 3> clap_default_chunk_starts(const std::array<ClapChunkRange, 3>& ranges) {
  std::array<int64_t, 3> s{};
  for (int i = 0; i < 3; ++i) s[i] = ranges[i].first + (ranges[i].count - 1) / 2;
  return s;
}

int64_t clap_default_crop_start(int64_t n, int64_t max_len) { return n > max_len ? (n - max_len) / 2 : 0; }

std::vector<float> clap_fit_waveform(const std::vector<float>& wave, int64_t max_len, const ClapDraws& draws,
                                     int64_t* crop_start_used) {
  const int64_t n = static_cast<int64_t>(wave.size());
  if (crop_start_used) *crop_start_used = -1;
  if (n <= max_len) return clap_repeatpad(wave, max_len);
  const int64_t start = draws.crop_start.value_or(clap_default_crop_start(n, max_len));
  require(start >= 0 && start <= n - max_len,
          "CLAP crop start " + std::to_string(start) + " is outside [0, " + std::to_string(n - max_len) +
              "] for a waveform of " + std::to_string(n) + " samples");
  if (crop_start_used) *crop_start_used = start;
  return std::vector<float>(wave.begin() + start, wave.begin() + start + max_len);
}

}  // namespace omnibind::preprocess
