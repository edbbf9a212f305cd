#include "omnibind/media/media_encode.h"

#include <png.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::media {
namespace {

void append_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void png_append(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}

}  // namespace

std::string encode_png(const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw InputError("encode_png: image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                     " but holds " + std::to_string(image.rgb.size()) + " bytes (expected width*height*3)");
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng: out of memory");
  }
  // libpng reports errors by longjmp back here (nothing with a destructor lives between the frames).
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw InputError("encode_png: libpng failed");
  }
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y)
    png_write_row(png, const_cast<png_bytep>(image.rgb.data() + static_cast<size_t>(y) * image.width * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string encode_wav_pcm16(const Audio& audio) {
  if (audio.sample_rate <= 0 || audio.channels.empty() || audio.frames() == 0)
    throw InputError("encode_wav: audio needs a positive sample rate and at least one frame");
  const auto channels = static_cast<uint64_t>(audio.channels.size());
  const auto frames = static_cast<uint64_t>(audio.frames());
  for (const auto& ch : audio.channels)
    if (ch.size() != frames) throw InputError("encode_wav: channels have different lengths");
  const uint64_t data_bytes = frames * channels * 2;
  if (data_bytes > 0xffffffffull - 36) throw InputError("encode_wav: audio too long for a WAV file");
  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  append_le(out, 36 + data_bytes, 4);
  out += "WAVEfmt ";
  append_le(out, 16, 4);
  append_le(out, 1, 2);  // PCM
  append_le(out, channels, 2);
  append_le(out, static_cast<uint64_t>(audio.sample_rate), 4);
  append_le(out, static_cast<uint64_t>(audio.sample_rate) * channels * 2, 4);
  append_le(out, channels * 2, 2);
  append_le(out, 16, 2);
  out += "data";
  append_le(out, data_bytes, 4);
  for (uint64_t f = 0; f < frames; ++f)
    for (uint64_t c = 0; c < channels; ++c) {
      float v = audio.channels[c][f];
      if (!std::isfinite(v)) throw InputError("encode_wav: sample " + std::to_string(f) + " is not finite");
      v = std::clamp(v, -1.0f, 1.0f);
      const auto s = static_cast<int16_t>(std::lround(v * 32767.0f));
      append_le(out, static_cast<uint16_t>(s), 2);
    }
  return out;
}

std::string encode_wav_samples(const void* interleaved, WavSample type, int channels, int64_t frames, int sample_rate) {
  if (sample_rate <= 0) throw InputError("audio sample rate must be positive, got " + std::to_string(sample_rate));
  if (channels <= 0 || frames <= 0) throw InputError("audio has no samples");
  const int bytes = type == WavSample::Int16 ? 2 : type == WavSample::Float32 ? 4 : 8;
  const uint64_t samples = static_cast<uint64_t>(frames) * static_cast<uint64_t>(channels);
  if (samples * bytes > 0xffffffffull - 64) throw InputError("audio too long for a WAV file");
  const auto* p = static_cast<const unsigned char*>(interleaved);
  if (type != WavSample::Int16)
    for (uint64_t i = 0; i < samples; ++i) {
      double v;
      if (type == WavSample::Float32) {
        float f;
        std::memcpy(&f, p + i * 4, 4);
        v = f;
      } else {
        std::memcpy(&v, p + i * 8, 8);
      }
      if (!std::isfinite(v))
        throw InputError("audio sample " + std::to_string(i / channels) + " (channel " + std::to_string(i % channels) +
                         ") is " + (std::isnan(v) ? "NaN" : "infinite"));
    }
  const uint64_t data_bytes = samples * bytes;
  const bool is_float = type != WavSample::Int16;
  std::string out;
  out.reserve(58 + data_bytes);
  out += "RIFF";
  append_le(out, (is_float ? 50 : 36) + data_bytes, 4);
  out += "WAVEfmt ";
  append_le(out, is_float ? 18 : 16, 4);
  append_le(out, is_float ? 3 : 1, 2);  // WAVE_FORMAT_IEEE_FLOAT | WAVE_FORMAT_PCM
  append_le(out, static_cast<uint64_t>(channels), 2);
  append_le(out, static_cast<uint64_t>(sample_rate), 4);
  append_le(out, static_cast<uint64_t>(sample_rate) * channels * bytes, 4);
  append_le(out, static_cast<uint64_t>(channels) * bytes, 2);
  append_le(out, static_cast<uint64_t>(bytes) * 8, 2);
  if (is_float) {
    append_le(out, 0, 2);  // cbSize
    out += "fact";         // required for non-PCM formats: frames per channel
    append_le(out, 4, 4);
    append_le(out, static_cast<uint64_t>(frames), 4);
  }
  out += "data";
  append_le(out, data_bytes, 4);
  static_assert(std::endian::native == std::endian::little, "WAV samples are written in host (little-endian) order");
  out.append(reinterpret_cast<const char*>(p), data_bytes);
  return out;
}

std::string encode_ply(const PointCloud& cloud) {
  const int64_t n = cloud.size();
  if (n == 0 || cloud.xyz.size() != static_cast<size_t>(n) * 3)
    throw InputError("encode_ply: point cloud is empty or xyz is not [N, 3]");
  const bool colour = cloud.had_colour && cloud.rgb.size() == cloud.xyz.size();
  std::string out = "ply\nformat binary_little_endian 1.0\nelement vertex " + std::to_string(n) +
                    "\nproperty float x\nproperty float y\nproperty float z\n";
  if (colour) out += "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  out += "end_header\n";
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) {
      const float v = cloud.xyz[i * 3 + k];
      if (!std::isfinite(v)) throw InputError("encode_ply: point " + std::to_string(i) + " is not finite");
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      append_le(out, bits, 4);
    }
    if (colour)
      for (int k = 0; k < 3; ++k)
        out.push_back(static_cast<char>(std::lround(std::clamp(cloud.rgb[i * 3 + k], 0.0f, 1.0f) * 255.0f)));
  }
  return out;
}

std::string encode_npy_floats(const void* data, int float_bytes, int64_t rows, int64_t cols) {
  if (float_bytes != 2 && float_bytes != 4 && float_bytes != 8)
    throw InputError("encode_npy: float size must be 2, 4 or 8 bytes, got " + std::to_string(float_bytes));
  if (rows < 0 || cols < 0) throw InputError("encode_npy: negative shape");
  std::string header = "{'descr': '<f" + std::to_string(float_bytes) + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  // magic (6) + version (2) + length (2) + header + padding + '\n' is a multiple of 64 bytes.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  if (header.size() > 0xffff) throw InputError("encode_npy: header too long");
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  append_le(out, header.size(), 2);
  out += header;
  static_assert(std::endian::native == std::endian::little, "NPY data are written in host (little-endian) order");
  out.append(static_cast<const char*>(data), static_cast<size_t>(rows * cols * float_bytes));
  return out;
}

void write_png(const std::string& path, const Image& image) { write_bytes_atomically(path, encode_png(image)); }
void write_wav(const std::string& path, const Audio& audio) { write_bytes_atomically(path, encode_wav_pcm16(audio)); }
void write_ply(const std::string& path, const PointCloud& cloud) { write_bytes_atomically(path, encode_ply(cloud)); }

}  // namespace omnibind::media
