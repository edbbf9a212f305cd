// The architecture and preprocessing constants of a small "zoo" expert, stored as JSON in the
// weights file's __metadata__.zoo_config. One optional tower per modality:
//   audio: log-mel (Kaldi fbank at 16 kHz, 128 bins averaged down to mel_bins, time resampled to
//          `frames`, standardised per input) -> conv3x3+ReLU+maxpool blocks -> MLP
//   image: RGB or grey, resized to size x size, (x/255 - mean)/std -> conv blocks -> MLP
//   point: `points` points (deterministic subsample, centred, unit sphere) -> shared MLP -> max-pool -> MLP
//   text:  hashed word / word-bigram / char-trigram features -> mean embedding bag -> MLP
// Every tower ends in fc1 (-> hidden, ReLU) and fc2 (-> dim); embeddings are L2-normalised.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace omnibind::experts::zoo {

struct ZooAudioConfig {
  int64_t mel_bins = 32;                   // 128 Kaldi bins averaged in groups of 128 / mel_bins
  int64_t frames = 48;                     // frames after linear resampling in time
  std::vector<int64_t> channels{16, 32, 64};
  int64_t hidden = 128;
};

struct ZooImageConfig {
  int64_t size = 28;                       // square input side after resizing
  int64_t channels_in = 1;                 // 1 = grey (mean of R, G, B), 3 = RGB
  float mean = 0.5f, std = 0.5f;           // on [0, 1] pixel values, all channels
  std::vector<int64_t> channels{16, 32, 64};
  int64_t hidden = 128;
};

struct ZooPointConfig {
  int64_t points = 256;
  std::vector<int64_t> widths{64, 128, 256};
  int64_t hidden = 128;
};

struct ZooTextConfig {
  int64_t buckets = 4096;                  // hashed feature buckets (row 0 of the table = padding)
  int64_t max_tokens = 96;                 // features kept per text
  int64_t width = 128;                     // embedding-bag width
  int64_t hidden = 128;
};

struct ZooConfig {
  std::string key = "ZOO";                 // the embedding space's name (pool / binding expert name)
  int64_t dim = 64;
  std::optional<ZooAudioConfig> audio;
  std::optional<ZooImageConfig> image;
  std::optional<ZooPointConfig> point;
  std::optional<ZooTextConfig> text;

  std::vector<std::string> modalities() const;  // "audio", "image", "point", "text" in that order
  bool has(const std::string& modality) const;
};

// Default towers for the listed modalities ("audio", "image", "point", "text"); InputError on others.
ZooConfig default_zoo_config(const std::vector<std::string>& modalities, int64_t dim, const std::string& key);

std::string zoo_config_to_json(const ZooConfig& config);
// InputError naming `source` and the field on malformed JSON, unknown fields' types, bad sizes.
ZooConfig zoo_config_from_json(const std::string& json, const std::string& source);
// Checks sizes (positive, divisibility of mel_bins into 128, at least one tower).
void validate_zoo_config(const ZooConfig& config, const std::string& source);

}  // namespace omnibind::experts::zoo
