// Audio decoding through libsndfile (WAV, FLAC, OGG/Vorbis, ...) into float32 channels.
// Integer PCM is scaled the way torchaudio's loaders do (int16 / 32768).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace omnibind::media {

struct Audio {
  int sample_rate = 0;
  std::vector<std::vector<float>> channels;  // [channel][frame]
  int64_t frames() const { return channels.empty() ? 0 : static_cast<int64_t>(channels[0].size()); }
};

// Format chosen by magic bytes (RIFF/WAVE, fLaC, OggS, ...). InputError naming `name` on empty or
// zero-length audio, unknown format or corrupt data.
Audio decode_audio_bytes(std::string_view bytes, const std::string& name);
Audio decode_audio_file(const std::string& path);

}  // namespace omnibind::media
