// WavCaps audio front end against wavcaps_mini (OmniBind WavCaps.emb_audios + torchlibrosa), stage
// by stage for every input file: decoded mono waveform, librosa's 32 kHz waveform (soxr HQ +
// fix_length), soxr's own length, pad/crop to 320000, log-mel [1001, 64] from the checkpoint's
// STFT/mel matrices, and the first 48 STFT power frames of item 0. Plus bad-input tests.
// README tolerance: 1e-3 abs on log-mel; measured values are printed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "audio_frontend_fixture.h"
#include "omnibind/common/error.h"
#include "omnibind/media/audio.h"
#include "omnibind/preprocess/audio_waveform.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"

namespace omnibind::preprocess {
namespace {

using audiofix::max_abs;
using audiofix::vec;

const char* kPrefix = "audio_encoder.audio_enc.audio_feats_extractor.";

TorchlibrosaWeights wavcaps_weights(audiofix::Fixture& fx) {
  TorchlibrosaWeights w{fx.tensor("weights.safetensors", std::string(kPrefix) + "mel_trans.stft.conv_real.weight"),
                        fx.tensor("weights.safetensors", std::string(kPrefix) + "mel_trans.stft.conv_imag.weight"),
                        fx.tensor("weights.safetensors", std::string(kPrefix) + "log_trans.melW")};
  return checked_torchlibrosa_weights(w, "wavcaps_mini/weights.safetensors");
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A minimal IEEE-float mono WAV (fmt 3) with the given samples.
std::string float_wav(const std::vector<float>& samples, int rate) {
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 4);
  std::string s = "RIFF" + u32(36 + data_bytes) + "WAVE" + "fmt " + u32(16) + u16(3) + u16(1) + u32(rate) +
                  u32(rate * 4) + u16(4) + u16(32) + "data" + u32(data_bytes);
  s.append(reinterpret_cast<const char*>(samples.data()), data_bytes);
  return s;
}

TEST(WavcapsAudio, MatchesReferenceForEveryFixtureInput) {
  OMNIBIND_REQUIRE_SHARED();
  audiofix::Fixture fx("wavcaps_mini");
  const auto inputs = fx.json("inputs.json");
  const TorchlibrosaWeights w = wavcaps_weights(fx);
  const std::string f = "expected_audio.safetensors";
  ASSERT_EQ(inputs["audio"].size(), 7u);
  for (const auto& in : inputs["audio"]) {
    const std::string name = in["name"];
    const std::string k = "audio/" + name + "/";
    const media::Audio audio = media::decode_audio_file(fx.path(in["file"]));
    ASSERT_EQ(audio.sample_rate, in["samplerate"].get<int>()) << name;
    ASSERT_EQ(static_cast<int64_t>(audio.channels.size()), in["channels"].get<int64_t>()) << name;
    ASSERT_EQ(audio.frames(), in["frames"].get<int64_t>()) << name;

    LibrosaLoadTrace trace;
    const std::vector<float> wave = librosa_load(audio, 32000, name, &trace);
    double mono_diff = -1;
    if (fx.has(f, k + "mono_native")) {
      mono_diff = max_abs(vec(trace.mono_native), fx.tensor(f, k + "mono_native"));
      EXPECT_EQ(mono_diff, 0.0) << name << ": soundfile float32 read + numpy float32 channel mean";
    }
    EXPECT_EQ(trace.resampled, in["resampled"].get<bool>()) << name;
    EXPECT_EQ(trace.soxr_samples, in["raw_soxr_samples"].get<int64_t>()) << name;
    ASSERT_EQ(static_cast<int64_t>(wave.size()), in["samples_32k"].get<int64_t>()) << name;
    EXPECT_EQ(static_cast<int64_t>(wave.size()), librosa_resample_length(audio.frames(), audio.sample_rate, 32000));
    double wave_diff = -1;
    if (fx.has(f, k + "waveform_32k")) {
      const at::Tensor want = fx.tensor(f, k + "waveform_32k");  // first min(n, 320000) samples
      wave_diff = max_abs(vec(wave).slice(0, 0, want.size(0)), want);
      // Debian's libsoxr reproduces the reference bit for bit here (fixture README, Tolerances).
      EXPECT_EQ(wave_diff, 0.0) << name;
    }
    if (name == "float_32k") {
      float peak = 0;
      for (float v : wave) peak = std::max(peak, std::abs(v));
      EXPECT_GT(peak, 1.5f) << "float WAV samples are not clipped";
    }

    const std::vector<float> model_wave = wavcaps_waveform(audio, name);
    ASSERT_EQ(model_wave.size(), 320000u) << name;
    const int64_t n = static_cast<int64_t>(wave.size());
    EXPECT_EQ(std::max<int64_t>(0, 320000 - n), in["zero_pad"].get<int64_t>()) << name;
    EXPECT_EQ(std::max<int64_t>(0, n - 320000), in["cropped"].get<int64_t>()) << name;
    for (int64_t i = 0; i < 320000; ++i) {
      const float want = i < n ? wave[static_cast<size_t>(i)] : 0.0f;  // first 10 s, zeros after
      if (model_wave[static_cast<size_t>(i)] != want) {
        ADD_FAILURE() << name << ": sample " << i << " of the 320000-sample model waveform";
        break;
      }
    }

    const at::Tensor logmel_want = fx.tensor(f, k + "logmel");
    const at::Tensor x = vec(model_wave).unsqueeze(0);  // [1, 320000]
    const at::Tensor conv = torchlibrosa_logmel(x, w, 320);
    ASSERT_EQ(conv.sizes(), (std::vector<int64_t>{1, 1001, 64})) << name;
    const double conv_diff = max_abs(conv[0], logmel_want);
    std::printf("[ wavcaps audio ] %-16s mono %.3g | wave32k %.3g (n %lld, soxr %lld) | logmel %.3g dB\n", name.c_str(),
                mono_diff, wave_diff, static_cast<long long>(n), static_cast<long long>(trace.soxr_samples), conv_diff);
    EXPECT_LE(conv_diff, 1e-3) << name;
    // A single waveform [N] gives the same [T, 64].
    EXPECT_EQ(max_abs(torchlibrosa_logmel(vec(model_wave), w, 320), conv[0]), 0.0) << name;

    if (fx.has(f, k + "stft_power_first48")) {
      const at::Tensor p_want = fx.tensor(f, k + "stft_power_first48");  // [48, 513]
      const at::Tensor p = torchlibrosa_power(x, w, 320).select(0, 0).select(0, 0).slice(0, 0, 48);
      const double rel = max_abs(p, p_want) / p_want.abs().max().item<double>();
      std::printf("[ wavcaps audio ] %-16s stft power (48 frames) max rel %.3g\n", name.c_str(), rel);
      EXPECT_LE(rel, 1e-5) << name;
    }
  }
}

TEST(WavcapsAudio, SilentClipIsMinus100DbEverywhere) {
  OMNIBIND_REQUIRE_SHARED();
  audiofix::Fixture fx("wavcaps_mini");
  const TorchlibrosaWeights w = wavcaps_weights(fx);
  media::Audio a;
  a.sample_rate = 32000;
  a.channels = {std::vector<float>(16000, 0.0f)};
  const at::Tensor lm = torchlibrosa_logmel(vec(wavcaps_waveform(a, "silence")), w, 320);
  EXPECT_EQ(lm.sizes(), (std::vector<int64_t>{1001, 64}));
  EXPECT_EQ(lm.min().item<float>(), -100.0f);
  EXPECT_EQ(lm.max().item<float>(), -100.0f);
}

TEST(AudioFrontend, SilenceCheckIsOptionalAndOneLine) {
  const std::string m = testkit::input_error_of([] { require_not_silent(std::vector<float>(100, 0.0f), "quiet.wav"); });
  EXPECT_NE(m.find("quiet.wav"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
  EXPECT_TRUE(testkit::input_error_of([] { require_not_silent({0.0f, 1e-30f}, "x"); }).empty());
}

TEST(WavcapsAudio, FitLengthPadsOrKeepsTheFirstSamples) {
  EXPECT_EQ(wavcaps_fit_length({1, 2, 3}, 5), (std::vector<float>{1, 2, 3, 0, 0}));
  EXPECT_EQ(wavcaps_fit_length({1, 2, 3, 4, 5, 6}, 5), (std::vector<float>{1, 2, 3, 4, 5}));
}

TEST(AudioFrontend, MonoMeanUsesFloat32InChannelOrder) {
  media::Audio a;
  a.sample_rate = 8000;
  const float big = 16777216.0f;  // 2^24: float32 sums lose the +1 depending on the order
  a.channels = {{big}, {1.0f}, {1.0f}};
  // numpy: ((0 + big) + 1) + 1 in float32 = big (each +1 rounds away), / 3
  EXPECT_EQ(librosa_to_mono(a)[0], big / 3.0f);
  a.channels = {{0.25f, -1.0f}, {0.5f, 1.0f}};
  EXPECT_EQ(librosa_to_mono(a), (std::vector<float>{0.375f, 0.0f}));
}

TEST(AudioFrontend, ResampleLengthIsComputedInDouble) {
  EXPECT_EQ(librosa_resample_length(220500, 44100, 48000), 240001);  // 240000.00000000003 -> ceil
  EXPECT_EQ(librosa_resample_length(115110, 44100, 32000), 83527);
  media::Audio a;
  a.sample_rate = 44100;
  a.channels = {std::vector<float>(220500, 0.25f)};
  LibrosaLoadTrace t;
  const auto y = librosa_load(a, 48000, "const", &t);
  EXPECT_EQ(t.soxr_samples, 240000);
  ASSERT_EQ(y.size(), 240001u);
  EXPECT_EQ(y.back(), 0.0f);  // fix_length's zero
}

TEST(AudioFrontend, BadAudioIsOneLineInputError) {
  const auto one_line = [](const std::string& msg) { return !msg.empty() && msg.find('\n') == std::string::npos; };
  EXPECT_TRUE(one_line(testkit::input_error_of([] { media::decode_audio_bytes("", "empty.wav"); })));
  EXPECT_TRUE(one_line(testkit::input_error_of([] { media::decode_audio_bytes("not audio at all", "junk.wav"); })));
  const std::string zero_len = float_wav({}, 32000);
  const std::string msg0 = testkit::input_error_of([&] { media::decode_audio_bytes(zero_len, "zero.wav"); });
  EXPECT_TRUE(one_line(msg0)) << msg0;
  EXPECT_NE(msg0.find("zero.wav"), std::string::npos);
  const std::string good = float_wav(std::vector<float>(1000, 0.1f), 32000);
  const std::string msg_trunc =
      testkit::input_error_of([&] { media::decode_audio_bytes(good.substr(0, 30), "truncated.wav"); });
  EXPECT_TRUE(one_line(msg_trunc)) << msg_trunc;
  std::string corrupt = good;
  std::memcpy(&corrupt[20], "\x34\x12", 2);  // unknown WAV format tag 0x1234
  const std::string msg_c = testkit::input_error_of([&] { media::decode_audio_bytes(corrupt, "corrupt.wav"); });
  EXPECT_TRUE(one_line(msg_c)) << msg_c;

  std::vector<float> s(1000, 0.1f);
  s[10] = std::numeric_limits<float>::quiet_NaN();
  const media::Audio nan_audio = media::decode_audio_bytes(float_wav(s, 32000), "nan.wav");
  const std::string msg_nan = testkit::input_error_of([&] { wavcaps_waveform(nan_audio, "nan.wav"); });
  EXPECT_TRUE(one_line(msg_nan)) << msg_nan;
  EXPECT_NE(msg_nan.find("nan.wav"), std::string::npos);

  media::Audio empty;
  empty.sample_rate = 32000;
  empty.channels = {{}};
  EXPECT_TRUE(one_line(testkit::input_error_of([&] { librosa_load(empty, 32000, "empty"); })));
}

TEST(AudioFrontend, TorchlibrosaRejectsBadShapes) {
  const auto w = TorchlibrosaWeights{at::zeros({513, 1, 1024}), at::zeros({513, 1, 1024}), at::zeros({513, 64})};
  EXPECT_TRUE(testkit::input_error_of([&] { checked_torchlibrosa_weights(w, "ckpt"); }).empty());
  const auto bad = TorchlibrosaWeights{at::zeros({513, 1, 1024}), at::zeros({513, 1, 1024}), at::zeros({512, 64})};
  const std::string m = testkit::input_error_of([&] { checked_torchlibrosa_weights(bad, "ckpt.pt"); });
  EXPECT_NE(m.find("ckpt.pt"), std::string::npos) << m;
  EXPECT_NE(m.find("melW"), std::string::npos) << m;
  EXPECT_FALSE(testkit::input_error_of([&] { torchlibrosa_logmel(at::zeros({512}), w, 320); }).empty());
  EXPECT_EQ(torchlibrosa_logmel(at::zeros({513}), w, 320).sizes(), (std::vector<int64_t>{2, 64}));
}

}  // namespace
}  // namespace omnibind::preprocess
