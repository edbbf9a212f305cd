// End-to-end parity of the "wavcaps" expert with OmniBind's WavCaps.emb_audios / emb_texts on the
// wavcaps_mini fixture: from the fixture's audio files and texts to the final embeddings, plus the
// intermediates the expert exposes (log-mel, token ids), strict checkpoint loading and bad input.
#include "omnibind/experts/wavcaps/wavcaps_expert.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "audio_text_parity.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/experts/wavcaps/wavcaps_config.h"
#include "omnibind/experts/wavcaps/wavcaps_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/media/media_encode.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::audio_text_testing;
using experts::ExpertOptions;
using experts::MediaInput;
using experts::Modality;

namespace {
const std::string kDir = "fixtures/wavcaps_mini/";

std::string fx(const std::string& rel) { return testkit::shared_path(kDir + rel); }

ExpertOptions options(const std::string& weights = "weights.pt", const std::string& precision = "fp32") {
  ExpertOptions o;
  o.weights = fx(weights);
  o.config = fx("config.json");
  o.precision = precision;
  o.vocab_files = {fx("vocab_mini.txt")};
  return o;
}

nlohmann::json inputs_json() { return nlohmann::json::parse(read_file_bytes(fx("inputs.json"))); }

std::vector<std::string> audio_files() {
  std::vector<std::string> v;
  const auto j = inputs_json();
  for (const auto& a : j["audio"]) v.push_back(fx(a["file"].get<std::string>()));
  return v;
}
std::vector<std::string> audio_names() {
  std::vector<std::string> v;
  const auto j = inputs_json();
  for (const auto& a : j["audio"]) v.push_back(a["name"].get<std::string>());
  return v;
}
std::vector<std::string> texts() {
  std::vector<std::string> v;
  const auto j = inputs_json();
  for (const auto& t : j["texts"]) v.push_back(t["text"].get<std::string>());
  return v;
}

at::Tensor preprocess_all(const experts::Expert& e, Modality m, const std::vector<MediaInput>& in) {
  std::vector<at::Tensor> rows;
  for (const auto& x : in) rows.push_back(e.preprocess(m, x));
  return at::stack(rows);
}
std::vector<MediaInput> as_paths(const std::vector<std::string>& v) {
  std::vector<MediaInput> r;
  for (const auto& p : v) r.push_back(MediaInput::from_path(p));
  return r;
}
std::vector<MediaInput> as_texts(const std::vector<std::string>& v) {
  std::vector<MediaInput> r;
  for (const auto& t : v) r.push_back(MediaInput::from_text(t));
  return r;
}

}  // namespace

TEST(WavCapsExpert, SizesAndKeys) {
  using namespace experts::wavcaps;
  EXPECT_EQ(wavcaps_key(wavcaps_size("pt", "")), "WAVCAPS_PT");
  EXPECT_EQ(wavcaps_key(wavcaps_size("ft_aud", "")), "WAVCAPS_FT_aud");
  EXPECT_EQ(wavcaps_key(wavcaps_size("ft_clo", "")), "WAVCAPS_FT_clo");
  EXPECT_EQ(wavcaps_size("", "/x/HTSAT-BERT-FT-AudioCaps.pt"), "ft_aud");
  EXPECT_EQ(wavcaps_size("", "/x/HTSAT-BERT-FT-Clotho.pt"), "ft_clo");
  EXPECT_EQ(wavcaps_size("", "/x/HTSAT-BERT-PT.pt"), "pt");
  EXPECT_EQ(wavcaps_size("clotho", ""), "ft_clo");
  EXPECT_NE(testkit::input_error_of([] { wavcaps_size("large", ""); }).find("ft_aud"), std::string::npos);
  auto c = wavcaps_released_config();
  EXPECT_EQ(c.embed_size(), 1024);
  EXPECT_EQ(c.htsat.num_features(), 768);
  EXPECT_EQ(c.text.hidden, 768);
  EXPECT_FALSE(c.text.pooler);
  EXPECT_EQ(c.frames(), 1001);
}

TEST(WavCapsExpert, AudioFilesToEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = experts::make_wavcaps_expert(options());
  EXPECT_EQ(e->name(), "wavcaps");
  EXPECT_EQ(e->key(), "WAVCAPS_PT");
  EXPECT_EQ(e->dim(), 48);
  auto audio = tensor_io::read_safetensors(fx("expected_audio.safetensors"));
  auto model = tensor_io::read_safetensors(fx("expected_model.safetensors"));
  const auto names = audio_names();
  at::Tensor mels = preprocess_all(*e, Modality::Audio, as_paths(audio_files()));
  ASSERT_EQ(mels.sizes(), (std::vector<int64_t>{7, 1001, 64}));
  for (size_t i = 0; i < names.size(); ++i) {
    const double d = max_abs(mels[i], fixture(audio, "audio/" + names[i] + "/logmel"));
    EXPECT_LE(d, 1e-3) << names[i] << " log-mel (README: 1e-3 abs)";
  }
  at::Tensor emb = e->encode(Modality::Audio, mels);
  expect_embeddings_match(emb, fixture(model, "model/audio_embeds"), "wavcaps audio (7 files, one batch)");
  // Any batching gives the same rows.
  at::Tensor one = e->encode(Modality::Audio, mels.narrow(0, 3, 1));
  EXPECT_LT(max_abs(one, emb.narrow(0, 3, 1)), 1e-6);
}

TEST(WavCapsExpert, TextsToEmbeddingsInBatchesOfEight) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = experts::make_wavcaps_expert(options());
  auto text = tensor_io::read_safetensors(fx("expected_text.safetensors"));
  auto model = tensor_io::read_safetensors(fx("expected_model.safetensors"));
  at::Tensor packed = preprocess_all(*e, Modality::Text, as_texts(texts()));
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{10, 2, 30}));
  // Token ids and masks identical to the reference's batches (each padded to its longest row).
  for (int b = 0; b < 2; ++b) {
    auto ids = fixture(text, "text/batch" + std::to_string(b) + "/input_ids");
    auto mask = fixture(text, "text/batch" + std::to_string(b) + "/attention_mask");
    auto mine = packed.narrow(0, 8 * b, ids.size(0)).narrow(2, 0, ids.size(1));
    EXPECT_TRUE(at::equal(mine.select(1, 0), ids)) << "batch " << b;
    EXPECT_TRUE(at::equal(mine.select(1, 1), mask)) << "batch " << b;
  }
  at::Tensor emb = e->encode(Modality::Text, packed);
  expect_embeddings_match(emb, fixture(model, "model/text_embeds"), "wavcaps text (10 texts)");
  // One text at a time (its own padding) stays within rounding.
  for (int64_t i = 0; i < packed.size(0); ++i)
    EXPECT_LT(max_abs(e->encode(Modality::Text, packed.narrow(0, i, 1)), emb.narrow(0, i, 1)), 1e-6) << i;
}

TEST(WavCapsExpert, RealVocabIdsAndSafetensorsWeights) {
  OMNIBIND_REQUIRE_SHARED();
  // The real bert-base-uncased vocab gives the ids the released model sees; the mini checkpoint
  // has 2500 rows, so the tokenizer is refused there (more tokens than word embeddings).
  auto o = options("weights.safetensors");
  o.vocab_files = {fx("bert-base-uncased-vocab.txt")};
  EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }).find("30522 tokens"), std::string::npos);
  // safetensors copy of the state dict loads the same model.
  auto e1 = experts::make_wavcaps_expert(options("weights.safetensors"));
  auto e2 = experts::make_wavcaps_expert(options("weights.pt"));
  auto x = preprocess_all(*e1, Modality::Text, as_texts({"a photo of train"}));
  EXPECT_TRUE(at::equal(e1->encode(Modality::Text, x), e2->encode(Modality::Text, x)));
}

TEST(WavCapsExpert, Bf16TracksTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = experts::make_wavcaps_expert(options("weights.pt", "bf16"));
  auto model = tensor_io::read_safetensors(fx("expected_model.safetensors"));
  at::Tensor a = e->encode(Modality::Audio, preprocess_all(*e, Modality::Audio, as_paths(audio_files())));
  at::Tensor t = e->encode(Modality::Text, preprocess_all(*e, Modality::Text, as_texts(texts())));
  const double ca = min_cosine(a, fixture(model, "model/audio_embeds")),
               ct = min_cosine(t, fixture(model, "model/text_embeds"));
  std::printf("wavcaps bf16 min cosine audio %.5f text %.5f\n", ca, ct);
  EXPECT_GE(ca, 0.99);
  EXPECT_GE(ct, 0.99);
}

TEST(WavCapsExpert, StrictKeysAndOtherFamilies) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("wavcaps_keys");
  auto sd = tensor_io::read_safetensors(fx("weights.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& n : sd.tensors.names()) all.emplace_back(n, tensor_io::to_tensor(sd.tensors.at(n)));
  // An unexpected tensor is named.
  auto extra = all;
  extra.emplace_back("audio_proj.9.weight", at::zeros({2, 2}));
  tensor_io::write_tensors(dir + "/extra.safetensors", extra);
  auto o = options();
  o.weights = dir + "/extra.safetensors";
  EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }).find("'audio_proj.9.weight'"),
            std::string::npos);
  // A missing one too, also among the tensors the embedding does not compute.
  for (const std::string drop : {"text_proj.2.bias", "audio_encoder.audio_enc.head.bias", "temp"}) {
    std::vector<std::pair<std::string, at::Tensor>> less;
    for (auto& kv : all)
      if (kv.first != drop) less.push_back(kv);
    tensor_io::write_tensors(dir + "/less.safetensors", less);
    o.weights = dir + "/less.safetensors";
    EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }).find("'" + drop + "'"),
              std::string::npos)
        << drop;
  }
  // A CLAP checkpoint is recognised as such.
  o.weights = testkit::shared_path("fixtures/clap_mini/fusion/weights.pt");
  EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }).find("LAION-CLAP"), std::string::npos);
  // A truncated checkpoint is an input error.
  const std::string bytes = read_file_bytes(fx("weights.pt"));
  std::ofstream(dir + "/cut.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  o.weights = dir + "/cut.pt";
  EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }), "");
  // A vocabulary that is not one.
  o = options();
  std::ofstream(dir + "/vocab.txt", std::ios::binary) << "hello\nworld\n";
  o.vocab_files = {dir + "/vocab.txt"};
  EXPECT_NE(testkit::input_error_of([&] { experts::make_wavcaps_expert(o); }).find("vocab.txt"), std::string::npos);
}

TEST(WavCapsExpert, BadInputs) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = experts::make_wavcaps_expert(options());
  const std::string dir = testkit::make_temp_dir("wavcaps_bad");
  std::ofstream(dir + "/empty.wav", std::ios::binary) << "";
  std::ofstream(dir + "/junk.wav", std::ios::binary) << "RIFF0000WAVEjunkjunkjunk";
  for (const auto& f : {dir + "/empty.wav", dir + "/junk.wav"}) {
    const std::string msg = testkit::input_error_of([&] { e->preprocess(Modality::Audio, MediaInput::from_path(f)); });
    EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
  const std::string msg =
      testkit::input_error_of([&] { e->preprocess(Modality::Text, MediaInput::from_text("ab\xff\xfe")); });
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { e->preprocess(Modality::Image, MediaInput::from_path("x.png")); }), "");
  EXPECT_NE(testkit::input_error_of([&] { e->encode(Modality::Audio, at::zeros({1, 1000, 64})); }), "");
  // Silence is valid audio: the log-mel is -100 dB everywhere and the embedding is finite.
  media::Audio quiet;
  quiet.sample_rate = 16000;
  quiet.channels = {std::vector<float>(8000, 0.0f)};
  media::write_wav(dir + "/silent.wav", quiet);
  auto silent = e->preprocess(Modality::Audio, MediaInput::from_path(dir + "/silent.wav"));
  EXPECT_EQ(silent.size(0), 1001);
  EXPECT_EQ(silent.max().item<float>(), -100.0f);
  EXPECT_TRUE(at::isfinite(e->encode(Modality::Audio, silent.unsqueeze(0))).all().item<bool>());
}

// The released sizes are self-consistent and run (random weights: HTSAT 96/[2,2,6,2], BERT-base, 1024).
TEST(WavCapsExpert, ReleasedSizesRunWithRandomWeights) {
  using namespace experts::wavcaps;
  auto c = wavcaps_released_config();
  auto m = WavCapsModel::load(experts::WeightSource::random(at::kFloat, 7), c, at::kFloat);
  at::Tensor mel = at::randn({1, 1001, 64}) * 10 - 40;
  at::Tensor a = m.audio_embed(mel);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{1, 1024}));
  EXPECT_NEAR(a.norm().item<double>(), 1.0, 1e-5);
  at::Tensor ids = at::tensor(std::vector<int64_t>{101, 1037, 3899, 102}, at::kLong).view({1, 4});
  at::Tensor t = m.text_embed(ids, at::ones({1, 4}, at::kLong));
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{1, 1024}));
  EXPECT_NEAR(t.norm().item<double>(), 1.0, 1e-5);
}
