// LAION-CLAP audio front ends against clap_mini/{fusion,base}, stage by stage for every input file:
// librosa's 48 kHz waveform and soxr's own length, the int16 round trip, repeatpad decisions, the
// recorded random draws (fusion chunk starts, waveform crop start) replayed from inputs.json, the
// torchaudio HTK log-mel (whole clip and 480000-sample clip), the bilinear shrink, the 4-channel
// mel_fusion and `longer` (CLAP_G), and the torchlibrosa log-mel of the 480000-sample model
// waveform from the checkpoint's matrices (CLAP_M). Measured differences are printed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "audio_frontend_fixture.h"
#include "omnibind/common/error.h"
#include "omnibind/media/audio.h"
#include "omnibind/preprocess/audio_waveform.h"
#include "omnibind/preprocess/clap_draws.h"
#include "omnibind/preprocess/clap_mel.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"

namespace omnibind::preprocess {
namespace {

using audiofix::max_abs;
using audiofix::vec;
using audiofix::vec16;

// Log-mel tolerance: the wavcaps_mini README's 1e-3 dB (float32 reference vs float64); this port
// issues the reference's own ATen calls, so the measured difference is expected to be 0.
constexpr double kMelTol = 1e-3;

ClapDraws draws_of(const nlohmann::json& in) {
  ClapDraws d;
  if (in.contains("fusion_chunk_starts")) {
    const auto s = in["fusion_chunk_starts"];
    d.chunk_starts = std::array<int64_t, 3>{s[0].get<int64_t>(), s[1].get<int64_t>(), s[2].get<int64_t>()};
  }
  if (in.contains("waveform_crop_start")) d.crop_start = in["waveform_crop_start"].get<int64_t>();
  return d;
}

void check_folder(const std::string& mode) {
  const bool fusion = mode == "fusion";
  audiofix::Fixture fx("clap_mini/" + mode);
  const auto inputs = fx.json("inputs.json");
  const std::string f = "expected_audio.safetensors";
  const at::Tensor longer_want = fx.tensor("expected_model.safetensors", "audio/longer");
  ASSERT_EQ(inputs["audio"].size(), 7u);
  ASSERT_EQ(longer_want.size(0), 7);
  // The recorded draws, read by the same reader `--crop-draws inputs.json` uses.
  const ClapDrawsTable table = read_clap_draws_file(fx.path("inputs.json"));
  TorchlibrosaWeights w;
  if (!fusion)
    w = checked_torchlibrosa_weights(
        {fx.tensor("weights.safetensors", "audio_branch.spectrogram_extractor.stft.conv_real.weight"),
         fx.tensor("weights.safetensors", "audio_branch.spectrogram_extractor.stft.conv_imag.weight"),
         fx.tensor("weights.safetensors", "audio_branch.logmel_extractor.melW")},
        "clap_mini/base/weights.safetensors");

  std::vector<at::Tensor> model_waves, lm_wants;  // CLAP_M: the whole batch at once, as the reference runs it
  for (size_t i = 0; i < inputs["audio"].size(); ++i) {
    const auto& in = inputs["audio"][i];
    const std::string name = in["name"];
    const std::string k = name + "/";
    const media::Audio audio = media::decode_audio_file(fx.path("inputs/" + in["file"].get<std::string>()));
    ASSERT_EQ(audio.frames(), in["frames"].get<int64_t>()) << name;
    const ClapDraws* recorded = find_clap_draws(table, fx.path("inputs/" + in["file"].get<std::string>()));
    ASSERT_NE(recorded, nullptr) << name;
    EXPECT_EQ(recorded->chunk_starts, draws_of(in).chunk_starts) << name;
    EXPECT_EQ(recorded->crop_start, draws_of(in).crop_start) << name;
    ClapAudioTrace tr;
    const ClapAudioInput got = clap_audio_input(audio, fusion, name, {}, *recorded, &tr);
    const ClapDecisions& d = got.decisions;

    // librosa.load(sr=48000)
    ASSERT_EQ(static_cast<int64_t>(tr.librosa_48k.size()), in["librosa_load_len_48k"].get<int64_t>()) << name;
    if (in.contains("soxr_output_len")) EXPECT_EQ(tr.load.soxr_samples, in["soxr_output_len"].get<int64_t>()) << name;
    double load_diff = -1;
    if (fx.has(f, k + "librosa_load_48k")) {
      load_diff = max_abs(vec(tr.librosa_48k), fx.tensor(f, k + "librosa_load_48k"));
      EXPECT_LE(load_diff, 1e-6) << name;
    }
    // int16 round trip: exact unless the resampler's last bits differ (README: +-1 LSB at most).
    double q_diff = -1;
    int64_t q_mismatch = 0;
    if (fx.has(f, k + "quantized_int16")) {
      const at::Tensor qw = fx.tensor(f, k + "quantized_int16");
      ASSERT_EQ(static_cast<int64_t>(tr.quantized.size()), qw.size(0)) << name;
      const at::Tensor qd = (vec16(tr.quantized).to(at::kInt) - qw.to(at::kInt)).abs();
      q_diff = qd.max().item<int>();
      q_mismatch = qd.ne(0).sum().item<int64_t>();
      EXPECT_LE(q_diff, 1) << name;
    }
    // decisions
    EXPECT_EQ(got.longer, longer_want[static_cast<int64_t>(i)].item<int64_t>() != 0) << name;
    EXPECT_EQ(got.longer, in["longer"].get<bool>() || (!fusion && tr.librosa_48k.size() > 480000u)) << name;
    if (in.contains("repeatpad_n_repeat")) {
      EXPECT_EQ(d.repeat, in["repeatpad_n_repeat"].get<int64_t>()) << name;
      EXPECT_EQ(d.zero_tail, in["repeatpad_zero_tail"].get<int64_t>()) << name;
    }
    if (in.contains("waveform_crop_start")) EXPECT_EQ(d.crop_start, in["waveform_crop_start"].get<int64_t>()) << name;
    ASSERT_EQ(got.waveform.sizes(), (std::vector<int64_t>{480000})) << name;
    // The model waveform is the quantised one, repeat-padded or cropped.
    const std::vector<float> deq = clap_int16_to_float32(tr.quantized);
    const at::Tensor expect_wave =
        d.crop_start >= 0 ? vec(deq).slice(0, d.crop_start, d.crop_start + 480000) : vec(clap_repeatpad(deq, 480000));
    EXPECT_EQ(max_abs(got.waveform, expect_wave), 0.0) << name;

    double mel_diff = -1, shrink_diff = -1, lm_diff = -1;
    if (fusion) {
      ASSERT_EQ(got.mel_fusion.sizes(), (std::vector<int64_t>{4, 1001, 64})) << name;
      const at::Tensor mel_want = fx.tensor(f, k + "mel");
      if (fx.has(f, k + "mel_shrink")) {  // longer: whole mel, shrink + 3 chunks
        ASSERT_TRUE(got.longer) << name;
        ASSERT_EQ(tr.mel_whole.sizes(), mel_want.sizes()) << name;
        EXPECT_EQ(d.total_frames, in["mel_frames_total"].get<int64_t>()) << name;
        mel_diff = max_abs(tr.mel_whole, mel_want);
        shrink_diff = max_abs(got.mel_fusion[0], fx.tensor(f, k + "mel_shrink"));
        EXPECT_LE(shrink_diff, kMelTol) << name;
        const auto& ranges = in["fusion_chunk_ranges"];
        for (int c = 0; c < 3; ++c) {
          EXPECT_EQ(d.chunk_ranges[c].first, ranges[c][0].get<int64_t>()) << name << " range " << c;
          EXPECT_EQ(d.chunk_ranges[c].first + d.chunk_ranges[c].count - 1, ranges[c][1].get<int64_t>()) << name;
          EXPECT_EQ(d.chunk_ranges[c].count, ranges[c][2].get<int64_t>()) << name << " range " << c;
          const int64_t s = d.chunk_starts[c];
          EXPECT_LE(max_abs(got.mel_fusion[c + 1], mel_want.slice(0, s, s + 1001)), kMelTol) << name << " chunk " << c;
        }
      } else {  // 4 copies of the (whole or repeat-padded) mel
        EXPECT_FALSE(got.longer) << name;
        mel_diff = 0;
        for (int c = 0; c < 4; ++c) mel_diff = std::max(mel_diff, max_abs(got.mel_fusion[c], mel_want));
      }
      EXPECT_LE(mel_diff, kMelTol) << name;
    } else {
      EXPECT_FALSE(got.mel_fusion.defined()) << name;
      const at::Tensor lm_want = fx.tensor(f, k + "logmel_torchlibrosa");
      const at::Tensor x = got.waveform.unsqueeze(0);
      lm_diff = max_abs(torchlibrosa_logmel(x, w, 480)[0], lm_want);
      model_waves.push_back(got.waveform);
      lm_wants.push_back(lm_want);
      EXPECT_LE(lm_diff, kMelTol) << name;
    }
    std::printf("[ clap %-6s ] %-26s load48k %.3g | int16 max %.0f (%lld differ) | longer %d crop %lld chunks %lld,%lld,%lld"
                " | mel %.3g shrink %.3g | torchlibrosa log-mel %.3g\n",
                mode.c_str(), name.c_str(), load_diff, q_diff, static_cast<long long>(q_mismatch), got.longer ? 1 : 0,
                static_cast<long long>(d.crop_start), static_cast<long long>(d.chunk_starts[0]),
                static_cast<long long>(d.chunk_starts[1]), static_cast<long long>(d.chunk_starts[2]), mel_diff,
                shrink_diff, lm_diff);
  }
  if (!fusion) {  // batch of 7 (the reference's get_audio_embedding stacks the files)
    const at::Tensor batch = torchlibrosa_logmel(at::stack(model_waves), w, 480);
    const double d = max_abs(batch, at::stack(lm_wants));
    std::printf("[ clap base   ] batch of %zu: torchlibrosa log-mel max %.3g dB\n", model_waves.size(), d);
    EXPECT_LE(d, kMelTol);
  }
}

TEST(ClapAudio, FusionMatchesReferenceForEveryFixtureInput) {
  OMNIBIND_REQUIRE_SHARED();
  check_folder("fusion");
}

TEST(ClapAudio, BaseMatchesReferenceForEveryFixtureInput) {
  OMNIBIND_REQUIRE_SHARED();
  check_folder("base");
}

TEST(ClapAudio, QuantisationTruncatesTowardZeroInFloat32) {
  const auto q = clap_float32_to_int16({0.5f, -0.5f, 1.7f, -3.0f, 0.99999f, 1.0f / 32767.0f * 0.999f});
  EXPECT_EQ(q, (std::vector<int16_t>{16383, -16383, 32767, -32767, 32766, 0}));
  const auto back = clap_int16_to_float32({32767, -32767, 1, 0});
  EXPECT_EQ(back, (std::vector<float>{1.0f, -1.0f, static_cast<float>(1.0 / 32767.0), 0.0f}));
}

TEST(ClapAudio, RepeatpadTilesThenZeroPads) {
  EXPECT_EQ(clap_repeatpad({1, 2, 3}, 8), (std::vector<float>{1, 2, 3, 1, 2, 3, 0, 0}));
  EXPECT_EQ(clap_repeatpad({1, 2, 3, 4, 5}, 8), (std::vector<float>{1, 2, 3, 4, 5, 0, 0, 0}));
  EXPECT_EQ(clap_repeatpad({1, 2}, 2), (std::vector<float>{1, 2}));
}

TEST(ClapAudio, ChunkRangesFollowArraySplitAndDefaultsAreDeterministic) {
  const auto r = clap_fusion_chunk_ranges(1251, 1001);  // 251 starts: 84 / 84 / 83
  EXPECT_EQ(r[0].first, 0);
  EXPECT_EQ(r[0].count, 84);
  EXPECT_EQ(r[1].first, 84);
  EXPECT_EQ(r[1].count, 84);
  EXPECT_EQ(r[2].first, 168);
  EXPECT_EQ(r[2].count, 83);
  EXPECT_EQ(clap_default_chunk_starts(r), (std::array<int64_t, 3>{41, 125, 209}));
  // 1002 frames: two starts -> [0], [1], [] -> the reference's fallback [0] for the empty third.
  const auto r2 = clap_fusion_chunk_ranges(1002, 1001);
  EXPECT_EQ(r2[1].first, 1);
  EXPECT_EQ(r2[2].first, 0);
  EXPECT_EQ(r2[2].count, 1);
  const auto r1 = clap_fusion_chunk_ranges(1001 + 0, 1001);  // one start: [0], [] -> [0], [] -> [0]
  EXPECT_EQ(clap_default_chunk_starts(r1), (std::array<int64_t, 3>{0, 0, 0}));
  EXPECT_EQ(clap_default_crop_start(600000, 480000), 60000);
  EXPECT_EQ(clap_default_crop_start(480201, 480000), 100);
}

TEST(ClapAudio, LongClipsAreDeterministicByDefault) {
  std::vector<float> wave(600000);
  for (size_t i = 0; i < wave.size(); ++i) wave[i] = 0.5f * std::sin(0.001f * static_cast<float>(i * (i % 7 + 1)));
  const ClapAudioInput a = clap_audio_input_from_waveform(wave, true, "sine");
  const ClapAudioInput b = clap_audio_input_from_waveform(wave, true, "sine");
  EXPECT_TRUE(a.longer);
  EXPECT_EQ(a.decisions.chunk_starts, (std::array<int64_t, 3>{41, 125, 209}));
  EXPECT_EQ(a.decisions.crop_start, 60000);
  EXPECT_TRUE(at::equal(a.mel_fusion, b.mel_fusion));
  EXPECT_TRUE(at::equal(a.waveform, b.waveform));
  // The corner case 480000 < n < 480480: 4 copies of the whole 1001-frame mel, longer = false.
  const ClapAudioInput c = clap_audio_input_from_waveform(std::vector<float>(wave.begin(), wave.begin() + 480300), true, "c");
  EXPECT_FALSE(c.longer);
  EXPECT_TRUE(at::equal(c.mel_fusion[0], c.mel_fusion[3]));
  EXPECT_EQ(c.decisions.crop_start, 150);
  const ClapAudioInput m = clap_audio_input_from_waveform(std::vector<float>(wave.begin(), wave.begin() + 480300), false, "c");
  EXPECT_TRUE(m.longer);  // rand_trunc marks it longer (unused without fusion)
  EXPECT_FALSE(m.mel_fusion.defined());
}

TEST(ClapAudio, DrawsOutsideTheirRangesAreInputErrors) {
  const std::vector<float> wave(600000, 0.1f);
  ClapDraws bad_chunk;
  bad_chunk.chunk_starts = std::array<int64_t, 3>{0, 10, 200};  // middle range is [84, 167]
  const std::string m1 = testkit::input_error_of([&] { clap_audio_input_from_waveform(wave, true, "x.wav", {}, bad_chunk); });
  EXPECT_NE(m1.find("x.wav"), std::string::npos) << m1;
  EXPECT_NE(m1.find("middle"), std::string::npos) << m1;
  ClapDraws bad_crop;
  bad_crop.crop_start = 120001;
  EXPECT_FALSE(testkit::input_error_of([&] { clap_audio_input_from_waveform(wave, false, "x.wav", {}, bad_crop); }).empty());
  bad_crop.crop_start = 120000;
  EXPECT_TRUE(testkit::input_error_of([&] { clap_audio_input_from_waveform(wave, false, "x.wav", {}, bad_crop); }).empty());
  EXPECT_FALSE(testkit::input_error_of([&] { clap_audio_input_from_waveform({}, true, "empty.wav"); }).empty());
}

TEST(ClapAudio, DrawsTableReadsBothLayoutsAndRejectsBadJson) {
  const ClapDrawsTable t = parse_clap_draws(
      R"({"a/b/long.wav": {"chunk_starts": [1, 90, 200], "crop_start": 7}, "other.flac": {"crop_start": 3}})", "d.json");
  const ClapDraws* d = find_clap_draws(t, "a/b/long.wav");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->chunk_starts, (std::array<int64_t, 3>{1, 90, 200}));
  EXPECT_EQ(d->crop_start, 7);
  const ClapDraws* o = find_clap_draws(t, "/data/other.flac");  // by file name
  ASSERT_NE(o, nullptr);
  EXPECT_FALSE(o->chunk_starts.has_value());
  EXPECT_EQ(o->crop_start, 3);
  EXPECT_EQ(find_clap_draws(t, "missing.wav"), nullptr);
  const ClapDrawsTable f = parse_clap_draws(R"({"audio": [{"file": "x.wav", "name": "x", "waveform_crop_start": 5}]})", "i.json");
  ASSERT_NE(find_clap_draws(f, "dir/x.wav"), nullptr);
  EXPECT_EQ(find_clap_draws(f, "dir/x.wav")->crop_start, 5);
  for (const char* bad : {"{", "[1,2]", R"({"a.wav": {"chunk_starts": [1, 2]}})", R"({"a.wav": {"crop_start": -4}})",
                          R"({"a.wav": 3})"}) {
    const std::string m = testkit::input_error_of([&] { parse_clap_draws(bad, "draws.json"); });
    EXPECT_NE(m.find("draws.json"), std::string::npos) << bad << " -> " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(ClapAudio, HtkFilterbankIsUnnormalisedTriangles) {
  const at::Tensor fb = clap_htk_mel_filterbank();
  ASSERT_EQ(fb.sizes(), (std::vector<int64_t>{513, 64}));
  EXPECT_LE(fb.max().item<float>(), 1.0f);
  EXPECT_GT(fb.max().item<float>(), 0.9f);  // peaks near 1 (no Slaney area normalisation)
  EXPECT_EQ(fb.min().item<float>(), 0.0f);
}

}  // namespace
}  // namespace omnibind::preprocess
