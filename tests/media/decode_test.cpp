// Decoders against the imagebind_mini fixture inputs (decoded-pixel sums recorded by PIL) and
// bad input: each must be a one-line InputError naming the input, never a crash.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <string>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "testing/test_support.h"

namespace omnibind::media {
namespace {

std::string fixture(const std::string& name) { return testkit::shared_path("fixtures/imagebind_mini/inputs/" + name); }

std::array<uint64_t, 3> channel_sums(const Image& img) {
  std::array<uint64_t, 3> s{0, 0, 0};
  for (size_t i = 0; i < img.rgb.size(); ++i) s[i % 3] += img.rgb[i];
  return s;
}

// Per-channel sums of PIL's convert("RGB") pixels, from inputs.json.
TEST(ImageDecode, MatchesPilPixelSums) {
  OMNIBIND_REQUIRE_SHARED();
  struct Case { const char* file; int w, h; std::array<uint64_t, 3> sums; };
  const Case cases[] = {
      {"dog_image.jpg", 640, 848, {53523613, 54350383, 51640301}},
      {"car_image.jpg", 640, 360, {24827098, 25453221, 19812161}},
      {"bird_image.jpg", 640, 855, {76436012, 84360336, 80324518}},
      {"wide_car_333x100.png", 333, 100, {3663324, 3225704, 2038113}},
      {"dog_gray_alpha_300x400.png", 300, 400, {11894305, 11894305, 11894305}},
  };
  for (const auto& c : cases) {
    const Image img = decode_image_file(fixture(c.file));
    EXPECT_EQ(img.width, c.w) << c.file;
    EXPECT_EQ(img.height, c.h) << c.file;
    EXPECT_EQ(channel_sums(img), c.sums) << c.file;
  }
}

TEST(ImageDecode, BytesAndFileAgree) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string bytes = read_file_bytes(fixture("wide_car_333x100.png"));
  EXPECT_EQ(decode_image_bytes(bytes, "x").rgb, decode_image_file(fixture("wide_car_333x100.png")).rgb);
}

void expect_input_error(const std::function<void()>& f, const std::string& must_contain) {
  try {
    f();
    FAIL() << "expected InputError containing '" << must_contain << "'";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(must_contain), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ImageDecode, EmptyInputIsInputError) {
  expect_input_error([] { decode_image_bytes("", "empty.jpg"); }, "empty.jpg: empty");
}

TEST(ImageDecode, TruncatedJpegIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string bytes = read_file_bytes(fixture("car_image.jpg"));
  expect_input_error([&] { decode_image_bytes(bytes.substr(0, bytes.size() / 2), "half.jpg"); }, "half.jpg: corrupt or truncated JPEG");
}

TEST(ImageDecode, CorruptPngIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  std::string bytes = read_file_bytes(fixture("wide_car_333x100.png"));
  for (size_t i = 100; i < 400; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);  // breaks CRC/zlib
  expect_input_error([&] { decode_image_bytes(bytes, "bad.png"); }, "bad.png: corrupt or truncated PNG");
  const std::string good = read_file_bytes(fixture("wide_car_333x100.png"));
  expect_input_error([&] { decode_image_bytes(good.substr(0, good.size() - 300), "cut.png"); }, "cut.png: corrupt or truncated PNG");
}

TEST(ImageDecode, UnsupportedFormatIsInputError) {
  expect_input_error([] { decode_image_bytes("GIF89a\x01\x00\x01\x00", "a.png"); }, "a.png: unsupported image format (GIF)");
}

TEST(ImageDecode, AbsurdDimensionsAreInputError) {
  // A valid PNG signature + IHDR announcing 100000 x 100000 pixels (CRC correct for this IHDR).
  std::string png("\x89PNG\r\n\x1A\n", 8);
  const unsigned char ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0};
  png.append(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
  uint32_t crc = 0xFFFFFFFFu;  // CRC-32 over type + data
  for (size_t i = 4; i < sizeof ihdr; ++i) {
    crc ^= ihdr[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<char>((crc >> s) & 0xFF));
  expect_input_error([&] { decode_image_bytes(png, "huge.png"); }, "huge.png");
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// Tiny PNGs written by PIL 9.4; expected pixels are what PIL's convert("RGB") returned for them.
TEST(ImageDecode, Grey16PngClipsLikePilModeI) {
  // 4x1 16-bit grey [0, 200, 300, 65535]: PIL opens mode "I" and convert("RGB") clips to 0..255.
  const Image img = decode_image_bytes(
      from_hex("89504e470d0a1a0a0000000d49484452000000040000000110000000008cc78c520000001149444154789c636060"
               "6038c1a8f3ff3f00077602f41ecc32760000000049454e44ae426082"),
      "grey16.png");
  ASSERT_EQ(img.width, 4);
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{0, 0, 0, 200, 200, 200, 255, 255, 255, 255, 255, 255}));
}

TEST(ImageDecode, RgbaPngDropsAlphaWithoutCompositing) {
  const Image img = decode_image_bytes(
      from_hex("89504e470d0a1a0a0000000d4948445200000002000000010806000000f4227f8a0000001149444154789c63e412"
               "9163d81720d20000063201e0bb669f290000000049454e44ae426082"),
      "rgba.png");
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{10, 20, 30, 200, 100, 50}));
}

TEST(AudioDecode, ReadsFixtureWavs) {
  OMNIBIND_REQUIRE_SHARED();
  struct Case { const char* file; int rate; size_t channels; int64_t frames; };
  const Case cases[] = {
      {"dog_audio.wav", 44100, 2, 115110}, {"car_audio.wav", 44100, 1, 220500},
      {"bird_audio.wav", 44100, 2, 220500}, {"fsdd_0_george_0.wav", 8000, 1, 2384},
      {"stereo_car_bird_44k.wav", 44100, 2, 130000},
  };
  for (const auto& c : cases) {
    const Audio a = decode_audio_file(fixture(c.file));
    EXPECT_EQ(a.sample_rate, c.rate) << c.file;
    EXPECT_EQ(a.channels.size(), c.channels) << c.file;
    EXPECT_EQ(a.frames(), c.frames) << c.file;
  }
  // int16 / 32768 exactly: every sample times 32768 is an integer in [-32768, 32767].
  const Audio a = decode_audio_file(fixture("fsdd_0_george_0.wav"));
  for (float v : a.channels[0]) {
    const float s = v * 32768.0f;
    ASSERT_EQ(s, static_cast<float>(static_cast<int>(s)));
    ASSERT_GE(s, -32768.0f);
    ASSERT_LE(s, 32767.0f);
  }
}

TEST(AudioDecode, ZeroLengthAudioIsInputError) {
  // A well-formed 16-bit mono WAV header with an empty data chunk.
  std::string wav = std::string("RIFF") + std::string("\x24\x00\x00\x00", 4) + "WAVEfmt " +
                    std::string("\x10\x00\x00\x00\x01\x00\x01\x00\x80\x3E\x00\x00\x00\x7D\x00\x00\x02\x00\x10\x00", 20) +
                    "data" + std::string("\x00\x00\x00\x00", 4);
  expect_input_error([&] { decode_audio_bytes(wav, "silent.wav"); }, "silent.wav");
}

TEST(AudioDecode, EmptyCorruptAndUnsupportedAreInputErrors) {
  expect_input_error([] { decode_audio_bytes("", "e.wav"); }, "e.wav: empty");
  expect_input_error([] { decode_audio_bytes("ID3\x03\x00 not an mp3 we read", "a.wav"); }, "a.wav: unsupported audio format");
  expect_input_error([] { decode_audio_bytes(std::string("RIFF\x10\x00\x00\x00WAVEjunkjunk", 20), "c.wav"); }, "c.wav: corrupt WAV");
}

}  // namespace
}  // namespace omnibind::media
