// Audio files/bytes -> float32 channels through libsndfile's virtual I/O (reads from memory).
// libsndfile normalises integer PCM by 1/0x8000 (16-bit), 1/0x80000000 (32-bit): the same scale
// torchaudio's loaders use, so samples match torchaudio.load bit for bit for PCM WAV.
#include "omnibind/media/audio.h"

#include <sndfile.h>

#include <cstring>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::media {
namespace {

struct MemFile {
  std::string_view data;
  sf_count_t pos = 0;
};

sf_count_t mem_len(void* u) { return static_cast<sf_count_t>(static_cast<MemFile*>(u)->data.size()); }
sf_count_t mem_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemFile*>(u);
  const sf_count_t size = static_cast<sf_count_t>(m->data.size());
  sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : size + off;
  if (p < 0 || p > size) return -1;
  m->pos = p;
  return p;
}
sf_count_t mem_read(void* dst, sf_count_t n, void* u) {
  auto* m = static_cast<MemFile*>(u);
  const sf_count_t left = static_cast<sf_count_t>(m->data.size()) - m->pos;
  if (n > left) n = left;
  if (n <= 0) return 0;
  std::memcpy(dst, m->data.data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t mem_tell(void* u) { return static_cast<MemFile*>(u)->pos; }

bool starts_with(std::string_view b, std::string_view magic) { return b.size() >= magic.size() && b.substr(0, magic.size()) == magic; }

// Which container the magic bytes announce ("" when none we accept).
std::string sniff(std::string_view b) {
  if ((starts_with(b, "RIFF") || starts_with(b, "RIFX") || starts_with(b, "RF64")) && b.size() >= 12 &&
      b.substr(8, 4) == "WAVE")
    return "WAV";
  if (starts_with(b, "fLaC")) return "FLAC";
  if (starts_with(b, "OggS")) return "OGG";
  if (starts_with(b, "FORM") && b.size() >= 12 && (b.substr(8, 4) == "AIFF" || b.substr(8, 4) == "AIFC")) return "AIFF";
  return "";
}

// 1 hour at 192 kHz in 8 channels: far above any sensible clip, far below memory exhaustion.
constexpr int64_t kMaxSamples = int64_t{192000} * 3600 * 8;

}  // namespace

Audio decode_audio_bytes(std::string_view bytes, const std::string& name) {
  require(!bytes.empty(), name + ": empty file, expected WAV, FLAC or OGG audio");
  const std::string kind = sniff(bytes);
  require(!kind.empty(), name + ": unsupported audio format (unrecognised magic bytes), expected WAV, FLAC or OGG");
  MemFile mem{bytes, 0};
  SF_VIRTUAL_IO io{mem_len, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info;
  std::memset(&info, 0, sizeof info);
  SNDFILE* sf = sf_open_virtual(&io, SFM_READ, &info, &mem);
  if (!sf) throw InputError(name + ": corrupt " + kind + " audio (" + sf_strerror(nullptr) + ")");
  struct Closer {
    SNDFILE* f;
    ~Closer() { sf_close(f); }
  } closer{sf};
  require(info.channels > 0 && info.channels <= 64,
          name + ": " + kind + " audio with " + std::to_string(info.channels) + " channels, expected 1..64");
  require(info.samplerate > 0 && info.samplerate <= 1000000,
          name + ": " + kind + " audio with sample rate " + std::to_string(info.samplerate) + ", expected 1..1000000 Hz");
  require(info.frames >= 0 && info.frames * info.channels <= kMaxSamples,
          name + ": " + kind + " audio is too long (" + std::to_string(info.frames) + " frames)");
  sf_command(sf, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);

  const int nch = info.channels;
  Audio out;
  out.sample_rate = info.samplerate;
  out.channels.resize(nch);
  for (auto& ch : out.channels) ch.reserve(static_cast<size_t>(info.frames));
  std::vector<float> chunk(static_cast<size_t>(4096) * nch);
  for (;;) {
    const sf_count_t got = sf_readf_float(sf, chunk.data(), 4096);
    if (got <= 0) break;
    for (int c = 0; c < nch; ++c) {
      auto& ch = out.channels[c];
      for (sf_count_t i = 0; i < got; ++i) ch.push_back(chunk[static_cast<size_t>(i) * nch + c]);
    }
  }
  if (sf_error(sf) != SF_ERR_NO_ERROR)
    throw InputError(name + ": corrupt " + kind + " audio (" + sf_strerror(sf) + ")");
  require(out.frames() > 0, name + ": " + kind + " audio has no samples (zero length)");
  return out;
}

Audio decode_audio_file(const std::string& path) { return decode_audio_bytes(read_file_bytes(path), path); }

}  // namespace omnibind::media
