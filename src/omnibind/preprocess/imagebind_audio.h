// ImageBind's audio input (imagebind/data.py load_and_transform_audio_data): resample to 16 kHz,
// 3 clips of 2 s (pytorchvideo ConstantClipsPerVideoSampler), per clip subtract the mean in place
// (the reference's aliasing is replayed), Kaldi fbank of channel 0 (128 mel bins), pad/cut to 204
// frames, Normalize(-4.268, 9.138).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "omnibind/media/audio.h"

namespace omnibind::preprocess {

// Intermediates, for parity tests and debugging.
struct ImagebindAudioTrace {
  std::vector<float> waveform_16k;                      // channel 0 after resampling, before clips
  std::vector<std::pair<int64_t, int64_t>> clip_bounds; // [start, end) sample indices per clip
  std::vector<float> clip_means;                        // mean over all channels of each clip
  std::vector<at::Tensor> fbank_raw;                    // [frames, 128] per clip
};

// Audio -> [3, 1, 128, 204] float32. InputError when a clip is shorter than one 25 ms frame.
at::Tensor imagebind_audio_input(const media::Audio& audio, ImagebindAudioTrace* trace = nullptr);

}  // namespace omnibind::preprocess
