// encode_wav_samples / encode_npy_floats (the Python module's in-memory hand-over of decoded arrays): what the
// decoders read back is exactly what was encoded (float32 bit for bit, int16 as x / 32768, float64 rounded to
// float32), and bad samples are InputErrors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::media {
namespace {

TEST(EncodeWavSamples, Float32RoundTripsBitForBit) {
  // Interleaved [frames][channels]: 2 channels, 5 frames, values outside [-1, 1] and subnormals kept as they are.
  std::vector<float> s = {0.5f, -0.25f, 1.75f, -3.0f, 1e-40f, 0.1f, -0.0f, 0.3333333f, 0.999999f, -1.0f};
  Audio a = decode_audio_bytes(encode_wav_samples(s.data(), WavSample::Float32, 2, 5, 22050), "x");
  ASSERT_EQ(a.sample_rate, 22050);
  ASSERT_EQ(a.channels.size(), 2u);
  ASSERT_EQ(a.frames(), 5);
  for (int f = 0; f < 5; ++f)
    for (int c = 0; c < 2; ++c) EXPECT_EQ(a.channels[c][f], s[f * 2 + c]) << f << "," << c;
}

TEST(EncodeWavSamples, Int16IsScaledLikePcmFiles) {
  std::vector<int16_t> s = {0, 1, -1, 32767, -32768, 12345};
  Audio a = decode_audio_bytes(encode_wav_samples(s.data(), WavSample::Int16, 1, 6, 16000), "x");
  ASSERT_EQ(a.frames(), 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.channels[0][i], static_cast<float>(s[i]) / 32768.0f) << i;
}

TEST(EncodeWavSamples, Float64IsRoundedToFloat32) {
  std::vector<double> s = {0.1, -0.7, 1.0 / 3.0};
  Audio a = decode_audio_bytes(encode_wav_samples(s.data(), WavSample::Float64, 1, 3, 8000), "x");
  ASSERT_EQ(a.frames(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.channels[0][i], static_cast<float>(s[i])) << i;
}

TEST(EncodeWavSamples, RefusesNonFiniteSamplesAndEmptyAudio) {
  std::vector<float> s = {0.f, 0.f, std::numeric_limits<float>::quiet_NaN(), 0.f};
  try {
    encode_wav_samples(s.data(), WavSample::Float32, 2, 2, 16000);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "audio sample 1 (channel 0) is NaN");
  }
  std::vector<double> inf = {std::numeric_limits<double>::infinity()};
  EXPECT_THROW(encode_wav_samples(inf.data(), WavSample::Float64, 1, 1, 16000), InputError);
  EXPECT_THROW(encode_wav_samples(s.data(), WavSample::Float32, 1, 0, 16000), InputError);
  EXPECT_THROW(encode_wav_samples(s.data(), WavSample::Float32, 1, 1, 0), InputError);
}

TEST(EncodeNpyFloats, PointCloudsReadBackAsFromNpSave) {
  std::vector<float> xyzrgb = {0.f, 1.f, 2.f, 0.1f, 0.2f, 0.3f, -1.f, 0.5f, 4.f, 1.f, 0.f, 0.5f};
  std::string npy = encode_npy_floats(xyzrgb.data(), 4, 2, 6);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ((npy.size() - 48) % 64, 0u);                          // header padded to 64 bytes as numpy does
  PointCloud pc = read_point_cloud_bytes(npy, "p");
  ASSERT_EQ(pc.size(), 2);
  EXPECT_TRUE(pc.had_colour);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(pc.xyz[i * 3 + k], xyzrgb[i * 6 + k]);
      EXPECT_EQ(pc.rgb[i * 3 + k], xyzrgb[i * 6 + 3 + k]);
    }
  std::vector<double> xyz = {0.1, 0.2, 0.3};
  PointCloud p64 = read_point_cloud_bytes(encode_npy_floats(xyz.data(), 8, 1, 3), "p");
  ASSERT_EQ(p64.size(), 1);
  EXPECT_EQ(p64.xyz[1], static_cast<float>(0.2));
  EXPECT_FALSE(p64.had_colour);
  std::vector<float> bad = {0.f, std::numeric_limits<float>::infinity(), 0.f};
  EXPECT_THROW(read_point_cloud_bytes(encode_npy_floats(bad.data(), 4, 1, 3), "p"), InputError);
}

}  // namespace
}  // namespace omnibind::media
