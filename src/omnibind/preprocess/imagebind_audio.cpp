#include "omnibind/preprocess/imagebind_audio.h"

#include <ATen/ATen.h>

#include <string>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_sampler.h"
#include "omnibind/preprocess/kaldi_fbank.h"
#include "omnibind/preprocess/sinc_resample.h"
#include "omnibind/preprocess/torch_float_sum.h"

namespace omnibind::preprocess {

at::Tensor imagebind_audio_input(const media::Audio& audio, ImagebindAudioTrace* trace) {
  constexpr int kRate = 16000, kClipSeconds = 2, kClips = 3, kMel = 128, kTarget = 204;
  require(!audio.channels.empty() && audio.frames() > 0, "audio input: no samples");
  require(audio.sample_rate > 0, "audio input: invalid sample rate " + std::to_string(audio.sample_rate));

  // Every channel is resampled: the clip mean is taken over all of them.
  std::vector<std::vector<float>> wave;
  wave.reserve(audio.channels.size());
  for (const auto& ch : audio.channels) wave.push_back(resample_sinc(ch, audio.sample_rate, kRate));
  const int64_t n = static_cast<int64_t>(wave[0].size());
  if (trace) {
    *trace = {};
    trace->waveform_16k = wave[0];
  }

  const auto bounds = constant_clip_bounds(n, kRate, kClipSeconds, kClips);
  at::Tensor out = at::empty({kClips, 1, kMel, kTarget}, at::kFloat);
  const float mean = -4.268f, stddev = 9.138f;  // torchvision Normalize: (x - mean) / std in float32
  const float pad_value = (0.0f - mean) / stddev;
  for (int c = 0; c < kClips; ++c) {
    const int64_t a = std::min(bounds[c].first, n), b = std::min(bounds[c].second, n);
    require(b - a >= 400, "audio input: clip " + std::to_string(c) + " has " + std::to_string(b - a) +
                              " samples at 16 kHz, fewer than one 25 ms fbank frame (400); the audio is too short");
    // waveform -= waveform.mean() on a view of the resampled signal: the shift stays in `wave` and
    // later overlapping clips see it (the reference's aliasing, replayed on purpose).
    // torch's float32 mean: its cascade sum per channel row, rows added in order, then / numel.
    float sum = 0.0f;
    for (const auto& ch : wave) sum += torch_float_sum(ch.data() + a, b - a);
    const float m = sum / static_cast<float>((b - a) * static_cast<int64_t>(wave.size()));
    for (auto& ch : wave)
      for (int64_t i = a; i < b; ++i) ch[static_cast<size_t>(i)] -= m;

    at::Tensor fb = kaldi_fbank_16k_128(wave[0].data() + a, b - a);  // [frames, 128], channel 0
    if (trace) {
      trace->clip_bounds.push_back(bounds[c]);
      trace->clip_means.push_back(m);
      trace->fbank_raw.push_back(fb);
    }
    const int64_t frames = fb.size(0);
    const float* f = fb.data_ptr<float>();
    float* o = out.data_ptr<float>() + static_cast<int64_t>(c) * kMel * kTarget;
    for (int mel = 0; mel < kMel; ++mel)
      for (int t = 0; t < kTarget; ++t)
        o[mel * kTarget + t] = t < frames ? (f[t * kMel + mel] - mean) / stddev : pad_value;
  }
  return out;
}

}  // namespace omnibind::preprocess
