// End-to-end parity of the "clap" expert with OmniBind's CLAP (CLAP_G = fusion, CLAP_M = base) on
// clap_mini: from the fixture's audio files and texts to the final embeddings, long clips replayed
// from the recorded random draws in inputs.json; the deterministic default for long clips; strict
// checkpoint loading and bad input.
#include "omnibind/experts/clap/clap_expert.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "audio_text_parity.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/clap/clap_config.h"
#include "omnibind/experts/clap/clap_model.h"
#include "omnibind/experts/expert.h"
#include "omnibind/experts/weight_source.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::audio_text_testing;
using experts::ExpertOptions;
using experts::MediaInput;
using experts::Modality;

namespace {

std::string fx(const std::string& kind, const std::string& rel) {
  return testkit::shared_path("fixtures/clap_mini/" + kind + "/" + rel);
}

ExpertOptions options(const std::string& kind, const std::string& precision = "fp32", bool draws = true) {
  ExpertOptions o;
  o.weights = fx(kind, "weights.pt");
  o.config = fx(kind, "config.json");
  o.precision = precision;
  o.vocab_files = {fx(kind, "roberta_vocab.json"), fx(kind, "roberta_merges.txt")};
  if (draws) o.crop_draws = fx(kind, "inputs.json");  // the reference's recorded np.random draws
  return o;
}

struct Inputs {
  std::vector<std::string> names, files, texts;
  explicit Inputs(const std::string& kind) {
    const auto j = nlohmann::json::parse(read_file_bytes(fx(kind, "inputs.json")));
    for (const auto& a : j["audio"]) {
      names.push_back(a["name"].get<std::string>());
      files.push_back(fx(kind, "inputs/" + a["file"].get<std::string>()));
    }
    for (const auto& t : j["texts"]) texts.push_back(t["text"].get<std::string>());
  }
};

at::Tensor preprocess_paths(const experts::Expert& e, const std::vector<std::string>& files) {
  std::vector<at::Tensor> rows;
  for (const auto& f : files) rows.push_back(e.preprocess(Modality::Audio, MediaInput::from_path(f)));
  return at::stack(rows);
}
at::Tensor preprocess_texts(const experts::Expert& e, const std::vector<std::string>& texts) {
  std::vector<at::Tensor> rows;
  for (const auto& t : texts) rows.push_back(e.preprocess(Modality::Text, MediaInput::from_text(t)));
  return at::stack(rows);
}

class ClapExpertParity : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(ClapExpert, ReleasedConfigs) {
  auto g = experts::clap::clap_released_config("fusion");
  EXPECT_TRUE(g.fusion());
  EXPECT_EQ(g.embed_dim(), 512);
  EXPECT_EQ(g.htsat.num_features(), 768);
  EXPECT_EQ(g.text.hidden, 768);
  EXPECT_TRUE(g.text.pooler);
  auto m = experts::clap::clap_released_config("base");
  EXPECT_FALSE(m.fusion());
  EXPECT_EQ(m.htsat.num_features(), 1024);
  EXPECT_EQ(experts::clap::clap_key(true), "CLAP_G");
  EXPECT_EQ(experts::clap::clap_key(false), "CLAP_M");
  EXPECT_NE(testkit::input_error_of([] { experts::clap::clap_released_config("large"); }), "");
}

TEST_P(ClapExpertParity, AudioFilesToEmbeddingsWithRecordedDraws) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string kind = GetParam();
  const bool fusion = kind == "fusion";
  auto e = experts::make_clap_expert(options(kind));
  EXPECT_EQ(e->key(), fusion ? "CLAP_G" : "CLAP_M");
  EXPECT_EQ(e->dim(), 32);
  Inputs in(kind);
  auto audio = tensor_io::read_safetensors(fx(kind, "expected_audio.safetensors"));
  auto model = tensor_io::read_safetensors(fx(kind, "expected_model.safetensors"));
  at::Tensor x = preprocess_paths(*e, in.files);
  // Intermediates the expert's preprocess exposes.
  const auto longer = fixture(model, "audio/longer");
  for (size_t i = 0; i < in.names.size(); ++i) {
    const std::string& n = in.names[i];
    if (fusion) {
      EXPECT_EQ(x[i][0][1001][0].item<float>() > 0.5f, longer[i].item<int64_t>() != 0) << n << " longer flag";
      if (audio.tensors.contains(n + "/mel_shrink")) {
        EXPECT_LE(max_abs(x[i][0].narrow(0, 0, 1001), fixture(audio, n + "/mel_shrink")), 1e-3) << n;
      } else if (audio.tensors.contains(n + "/mel")) {
        for (int c = 0; c < 4; ++c)
          EXPECT_LE(max_abs(x[i][c].narrow(0, 0, 1001), fixture(audio, n + "/mel")), 1e-3) << n;
      }
    } else if (audio.tensors.contains(n + "/logmel_torchlibrosa")) {
      EXPECT_LE(max_abs(x[i], fixture(audio, n + "/logmel_torchlibrosa")), 1e-3) << n;
    }
  }
  at::Tensor emb = e->encode(Modality::Audio, x);
  expect_embeddings_match(emb, fixture(model, "audio/omnibind"), "clap " + kind + " audio (7 files)");
  for (int64_t i = 0; i < emb.size(0); ++i)
    EXPECT_LE(max_abs(emb[i], fixture(model, "audio/omnibind")[i]), 1e-4) << in.names[i];
}

TEST_P(ClapExpertParity, TextsToEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string kind = GetParam();
  auto e = experts::make_clap_expert(options(kind));
  Inputs in(kind);
  auto text = tensor_io::read_safetensors(fx(kind, "expected_text.safetensors"));
  auto model = tensor_io::read_safetensors(fx(kind, "expected_model.safetensors"));
  at::Tensor packed = preprocess_texts(*e, in.texts);
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{9, 2, 77}));
  EXPECT_TRUE(at::equal(packed.select(1, 0), fixture(text, "text/input_ids")));
  EXPECT_TRUE(at::equal(packed.select(1, 1), fixture(text, "text/attention_mask")));
  at::Tensor emb = e->encode(Modality::Text, packed);
  expect_embeddings_match(emb, fixture(model, "text/omnibind"), "clap " + kind + " text (9 texts)");
}

TEST_P(ClapExpertParity, DeterministicDefaultForLongClips) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string kind = GetParam();
  auto e = experts::make_clap_expert(options(kind, "fp32", /*draws=*/false));
  Inputs in(kind);
  const std::string long_clip = fx(kind, "inputs/long_bbq_toilet_32k_12p5s.wav");
  at::Tensor a = e->preprocess(Modality::Audio, MediaInput::from_path(long_clip));
  at::Tensor b = e->preprocess(Modality::Audio, MediaInput::from_path(long_clip));
  EXPECT_TRUE(at::equal(a, b));
  at::Tensor emb = e->encode(Modality::Audio, a.unsqueeze(0));
  EXPECT_TRUE(at::isfinite(emb).all().item<bool>());
  EXPECT_NEAR(emb.norm().item<double>(), 1.0, 1e-5);
  // Short clips do not depend on draws at all.
  auto with = experts::make_clap_expert(options(kind));
  at::Tensor s1 = e->preprocess(Modality::Audio, MediaInput::from_path(in.files[1]));
  at::Tensor s2 = with->preprocess(Modality::Audio, MediaInput::from_path(in.files[1]));
  EXPECT_TRUE(at::equal(s1, s2));
  // Library callers can pass draws directly (keyed by file name).
  preprocess::ClapDrawsTable table;
  table["long_bbq_toilet_32k_12p5s.wav"].crop_start = 9021;
  if (kind == "fusion") table["long_bbq_toilet_32k_12p5s.wav"].chunk_starts = std::array<int64_t, 3>{47, 167, 206};
  auto lib = experts::make_clap_expert(options(kind, "fp32", false), table);
  at::Tensor c = lib->preprocess(Modality::Audio, MediaInput::from_path(long_clip));
  at::Tensor d = with->preprocess(Modality::Audio, MediaInput::from_path(long_clip));
  // base: 9021 is base's recorded crop; fusion: the recorded chunk starts (its model ignores the crop).
  EXPECT_TRUE(at::equal(c, d));
}

TEST_P(ClapExpertParity, Bf16TracksTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string kind = GetParam();
  auto e = experts::make_clap_expert(options(kind, "bf16"));
  Inputs in(kind);
  auto model = tensor_io::read_safetensors(fx(kind, "expected_model.safetensors"));
  const std::vector<std::string> files = {in.files[0], in.files[4]};
  at::Tensor a = e->encode(Modality::Audio, preprocess_paths(*e, files));
  at::Tensor want = at::stack({fixture(model, "audio/omnibind")[0], fixture(model, "audio/omnibind")[4]});
  at::Tensor t = e->encode(Modality::Text, preprocess_texts(*e, in.texts));
  const double ca = min_cosine(a, want), ct = min_cosine(t, fixture(model, "text/omnibind"));
  std::printf("clap %s bf16 min cosine audio %.5f text %.5f\n", kind.c_str(), ca, ct);
  EXPECT_GE(ca, 0.99);
  EXPECT_GE(ct, 0.99);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClapExpertParity, ::testing::Values("fusion", "base"));

TEST(ClapExpert, SizeFromCheckpointAndMismatches) {
  OMNIBIND_REQUIRE_SHARED();
  auto o = options("base");
  o.size = "fusion";
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("not --size fusion"),
            std::string::npos);
  o = options("fusion");
  o.config = fx("base", "config.json");
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }), "");
  o = options("fusion");
  o.weights = testkit::shared_path("fixtures/wavcaps_mini/weights.pt");
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("WavCaps"), std::string::npos);
  // safetensors copy without the DDP prefix loads too.
  o = options("fusion");
  o.weights = fx("fusion", "weights.safetensors");
  EXPECT_EQ(experts::make_clap_expert(o)->key(), "CLAP_G");
}

TEST(ClapExpert, StrictKeysAndBadFiles) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("clap_keys");
  auto sd = tensor_io::read_safetensors(fx("base", "weights.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& n : sd.tensors.names()) all.emplace_back(n, tensor_io::to_tensor(sd.tensors.at(n)));
  auto extra = all;
  extra.emplace_back("text_branch.pooler.extra", at::zeros({2}));
  tensor_io::write_tensors(dir + "/extra.safetensors", extra);
  auto o = options("base");
  o.weights = dir + "/extra.safetensors";
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("'text_branch.pooler.extra'"),
            std::string::npos);
  for (const std::string drop : {"text_projection.0.bias", "logit_scale_t", "audio_transform.sequential.3.bias"}) {
    std::vector<std::pair<std::string, at::Tensor>> less;
    for (auto& kv : all)
      if (kv.first != drop) less.push_back(kv);
    tensor_io::write_tensors(dir + "/less.safetensors", less);
    o.weights = dir + "/less.safetensors";
    EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("'" + drop + "'"), std::string::npos)
        << drop;
  }
  // Tokenizer files: both needed, and they must be what they say.
  o = options("base");
  o.vocab_files = {fx("base", "roberta_vocab.json")};
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("merges.txt"), std::string::npos);
  std::ofstream(dir + "/vocab.json", std::ios::binary) << "[1, 2, 3]";
  o.vocab_files = {dir + "/vocab.json", fx("base", "roberta_merges.txt")};
  EXPECT_NE(testkit::input_error_of([&] { experts::make_clap_expert(o); }).find("vocab.json"), std::string::npos);
  // Bad audio and text.
  auto e = experts::make_clap_expert(options("base"));
  std::ofstream(dir + "/empty.wav", std::ios::binary) << "";
  EXPECT_NE(testkit::input_error_of([&] {
              e->preprocess(Modality::Audio, MediaInput::from_path(dir + "/empty.wav"));
            }).find("empty.wav"),
            std::string::npos);
  EXPECT_NE(
      testkit::input_error_of([&] { e->preprocess(Modality::Text, MediaInput::from_text("\xc3\x28")); }).find("UTF-8"),
      std::string::npos);
  // Draws outside their range are refused.
  o = options("base", "fp32", false);
  std::ofstream(dir + "/draws.json") << R"({"long_bbq_toilet_32k_12p5s.wav": {"crop_start": 999999}})";
  o.crop_draws = dir + "/draws.json";
  auto bad = experts::make_clap_expert(o);
  EXPECT_NE(testkit::input_error_of([&] {
              bad->preprocess(Modality::Audio,
                              MediaInput::from_path(fx("base", "inputs/long_bbq_toilet_32k_12p5s.wav")));
            }),
            "");
}

// The released sizes are self-consistent and run (random weights): CLAP_G HTSAT-tiny + AFF with a
// longer clip, CLAP_M HTSAT-base, roberta-base, 512.
TEST(ClapExpert, ReleasedSizesRunWithRandomWeights) {
  using namespace experts::clap;
  auto g = ClapModel::load(experts::WeightSource::random(at::kFloat, 3), clap_released_config("fusion"), at::kFloat);
  at::Tensor a = g.audio_embed(at::randn({1, 4, 1001, 64}) * 10 - 40, {true});
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{1, 512}));
  EXPECT_NEAR(a.norm().item<double>(), 1.0, 1e-5);
  at::Tensor ids = at::tensor(std::vector<int64_t>{0, 250, 2335, 2, 1, 1}, at::kLong).view({1, 6});
  at::Tensor t = g.text_embed(ids, ids.ne(1).to(at::kLong));
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{1, 512}));
  auto m = ClapModel::load(experts::WeightSource::random(at::kFloat, 4), clap_released_config("base"), at::kFloat);
  at::Tensor b = m.audio_embed(at::randn({1, 1, 1001, 64}) * 10 - 40);
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{1, 512}));
  EXPECT_NEAR(b.norm().item<double>(), 1.0, 1e-5);
}
