// Deterministic model inputs of the zoo experts (decoded media -> one item's tensor, no batch dim).
// Constants come from the expert's ZooConfig; see zoo_config.h for the recipe of each modality.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::experts::zoo {

// Channels averaged to mono, resampled to 16 kHz (torchaudio sinc), Kaldi fbank (128 bins) averaged
// to mel_bins, time adaptive-averaged (longer) or linearly stretched (shorter) to `frames`,
// standardised by the clip's own mean and std. -> [1, frames, mel_bins] float32.
// Clips shorter than one 25 ms frame are zero-padded to one. InputError naming `name` when empty.
at::Tensor zoo_audio_input(const media::Audio& audio, const ZooAudioConfig& config, const std::string& name);

// RGB -> grey (mean of R, G, B) when channels_in = 1, resized to size x size (bilinear, antialiased
// when shrinking), (x / 255 - mean) / std. -> [channels_in, size, size] float32.
at::Tensor zoo_image_input(const media::Image& image, const ZooImageConfig& config, const std::string& name);
// The same from a grey 8-bit raster (e.g. MNIST's IDX images).
at::Tensor zoo_grey_image_input(const uint8_t* pixels, int64_t height, int64_t width, const ZooImageConfig& config);

// Seeded subsample to `points` (clouds with fewer points are repeated cyclically), centred on the
// mean, scaled into the unit sphere. -> [points, 3] float32.
at::Tensor zoo_point_input(const media::PointCloud& cloud, const ZooPointConfig& config, const std::string& name);

// Lower-cased ASCII, words = runs of letters/digits/non-ASCII bytes; features = words, word
// bigrams, char trigrams of "<word>", each FNV-1a hashed into 1..buckets, in that order, cut to
// max_tokens. -> int64 [max_tokens], 0 = padding.
at::Tensor zoo_text_input(const std::string& text, const ZooTextConfig& config);
std::vector<int64_t> zoo_text_features(const std::string& text, int64_t buckets);

}  // namespace omnibind::experts::zoo
