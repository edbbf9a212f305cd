// Parity of the shared BERT / RoBERTa text encoder (experts/bert) with transformers 4.30 as WavCaps
// and LAION-CLAP run it, on the mini fixtures: the fixtures' own token ids in, embeddings, layer
// outputs, [CLS] states, pooler, projections and final embeddings out.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "audio_text_parity.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/bert/bert_config.h"
#include "omnibind/experts/bert/bert_model.h"
#include "omnibind/experts/weight_source.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::audio_text_testing;
using omnibind::experts::WeightSource;
using namespace omnibind::experts::bert;

namespace {

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file_bytes(path)); }

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-12); }

// Linear -> ReLU -> Linear from a state dict (the projection heads of both families).
at::Tensor mlp(const WeightSource& w, const std::string& a, const std::string& b, const at::Tensor& x, int64_t in,
               int64_t out) {
  at::Tensor h = at::relu(at::linear(x, w.get(a + ".weight", {out, in}), w.get(a + ".bias", {out})));
  return at::linear(h, w.get(b + ".weight", {out, out}), w.get(b + ".bias", {out}));
}

struct WavCapsText {
  tensor_io::SafetensorsFile weights, text;
  BertConfig config;
  WavCapsText()
      : weights(tensor_io::read_safetensors(testkit::shared_path("fixtures/wavcaps_mini/weights.safetensors"))),
        text(tensor_io::read_safetensors(testkit::shared_path("fixtures/wavcaps_mini/expected_text.safetensors"))) {
    auto j = read_json(testkit::shared_path("fixtures/wavcaps_mini/config.json"));
    config = bert_config_from_json(j["bert_config_json"], bert_base_uncased(), "wavcaps_mini/config.json");
  }
};

struct ClapText {
  tensor_io::SafetensorsFile weights, text, model;
  BertConfig config;
  explicit ClapText(const std::string& kind)
      : weights(
            tensor_io::read_safetensors(testkit::shared_path("fixtures/clap_mini/" + kind + "/weights.safetensors"))),
        text(tensor_io::read_safetensors(
            testkit::shared_path("fixtures/clap_mini/" + kind + "/expected_text.safetensors"))),
        model(tensor_io::read_safetensors(
            testkit::shared_path("fixtures/clap_mini/" + kind + "/expected_model.safetensors"))) {
    auto j = read_json(testkit::shared_path("fixtures/clap_mini/" + kind + "/config.json"));
    config = bert_config_from_json(j["roberta_config"], roberta_base(), "clap_mini/config.json");
  }
};

}  // namespace

TEST(BertEncoder, ReleasedConfigs) {
  auto b = bert_base_uncased();
  EXPECT_EQ(b.hidden, 768);
  EXPECT_EQ(b.layers, 12);
  EXPECT_EQ(b.vocab_size, 30522);
  EXPECT_EQ(b.ln_eps, 1e-12);
  EXPECT_FALSE(b.pooler);
  auto r = roberta_base();
  EXPECT_EQ(r.vocab_size, 50265);
  EXPECT_EQ(r.max_positions, 514);
  EXPECT_EQ(r.type_vocab, 1);
  EXPECT_EQ(r.ln_eps, 1e-5);
  EXPECT_EQ(r.positions, PositionKind::Roberta);
  EXPECT_TRUE(r.pooler);
  // Unsupported settings are refused with the file named.
  auto bad = nlohmann::json::parse(R"({"hidden_act": "relu"})");
  EXPECT_NE(testkit::input_error_of([&] { bert_config_from_json(bad, b, "c.json"); }).find("c.json"),
            std::string::npos);
  auto odd = nlohmann::json::parse(R"({"hidden_size": 10, "num_attention_heads": 3})");
  EXPECT_NE(testkit::input_error_of([&] { bert_config_from_json(odd, b, "c.json"); }).find("divisible"),
            std::string::npos);
}

TEST(BertEncoder, WavCapsBertLayersClsAndProjection) {
  OMNIBIND_REQUIRE_SHARED();
  WavCapsText f;
  EXPECT_EQ(f.config.hidden, 32);
  EXPECT_EQ(f.config.layers, 2);
  EXPECT_EQ(f.config.ln_eps, 1e-12);
  WeightSource w(f.weights.tensors, at::kFloat, "WavCaps");
  auto m = BertModel::load(f.config, w.sub("text_encoder.text_encoder."));
  // Every text-encoder tensor of the checkpoint is consumed (strict coverage of this part).
  EXPECT_EQ(testkit::input_error_of([&] {
              w.require_all_used({"audio_encoder.", "audio_proj.", "text_proj.", "temp"});
            }),
            "");

  // Batch 0 intermediates (8 texts padded to 30).
  BertStages st;
  auto ids0 = fixture(f.text, "text/batch0/input_ids"), mask0 = fixture(f.text, "text/batch0/attention_mask");
  auto h0 = m.forward(ids0, mask0, &st);
  expect_close_rel(st.embeddings, fixture(f.text, "text/batch0/bert_embeddings"), 1e-5, "wavcaps bert embeddings");
  expect_close_rel(st.layer_out[0], fixture(f.text, "text/batch0/bert_layer0"), 1e-5, "wavcaps bert layer0");
  expect_close_rel(st.layer_out[1], fixture(f.text, "text/batch0/bert_layer1"), 1e-5, "wavcaps bert layer1");

  // [CLS] of both batches, projections, embeddings.
  auto h1 = m.forward(fixture(f.text, "text/batch1/input_ids"), fixture(f.text, "text/batch1/attention_mask"));
  auto cls = at::cat({h0.select(1, 0), h1.select(1, 0)});
  expect_close_rel(cls, fixture(f.text, "text/cls_hidden"), 1e-5, "wavcaps [CLS] hidden");
  auto proj = mlp(w, "text_proj.0", "text_proj.2", cls, 32, 48);
  expect_close_rel(proj, fixture(f.text, "text/text_proj"), 1e-5, "wavcaps text_proj");
  expect_embeddings_match(unit(proj), fixture(f.text, "text/encode_text"), "wavcaps encode_text");
  expect_embeddings_match(unit(unit(proj)), fixture(f.text, "text/emb_texts"), "wavcaps emb_texts");
}

TEST(BertEncoder, WavCapsEachTextAloneMatchesItsBatch) {
  OMNIBIND_REQUIRE_SHARED();
  WavCapsText f;
  auto m =
      BertModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "WavCaps", "text_encoder.text_encoder."));
  auto ids = fixture(f.text, "text/batch0/input_ids"), mask = fixture(f.text, "text/batch0/attention_mask");
  auto want = fixture(f.text, "text/cls_hidden").narrow(0, 0, 8);
  for (int64_t i = 0; i < 8; ++i) {
    const int64_t n = mask[i].sum().item<int64_t>();  // trimmed to its own length
    auto h = m.forward(ids.narrow(0, i, 1).narrow(1, 0, n), mask.narrow(0, i, 1).narrow(1, 0, n));
    EXPECT_LT(max_abs(h.select(1, 0), want.narrow(0, i, 1)), 1e-5) << "text " << i;
  }
}

class ClapRoberta : public ::testing::TestWithParam<std::string> {};

TEST_P(ClapRoberta, PositionsLayersPoolerProjection) {
  OMNIBIND_REQUIRE_SHARED();
  ClapText f(GetParam());
  EXPECT_EQ(f.config.positions, PositionKind::Roberta);
  EXPECT_EQ(f.config.ln_eps, 1e-5);
  WeightSource w(f.weights.tensors, at::kFloat, "CLAP");
  auto m = BertModel::load(f.config, w.sub("text_branch."));
  EXPECT_EQ(testkit::input_error_of([&] {
              w.require_all_used({"audio_branch.", "audio_transform.", "audio_projection.", "text_transform.",
                                  "text_projection.", "logit_scale_a", "logit_scale_t"});
            }),
            "");
  auto ids = fixture(f.text, "text/input_ids"), mask = fixture(f.text, "text/attention_mask");
  // Positions from the ids (a literal <pad> inside the text keeps position padding_idx). The
  // fixture's stored `text/position_ids` follow the attention mask instead, which only differs on
  // the row with a literal "<pad>" (row 7, special_token_literals): there the reference model's own
  // embeddings_out (matched exactly below) show that it used the ids, as transformers'
  // create_position_ids_from_input_ids does.
  auto pos = m.position_ids(ids), stored = fixture(f.text, "text/position_ids");
  auto literal_pad = ids.eq(f.config.pad_token_id).logical_and(mask.eq(1));
  ASSERT_EQ(literal_pad.sum().item<int64_t>(), 1);  // row 7, "...rain<pad>"
  ASSERT_TRUE(literal_pad[7].any().item<bool>());
  for (int64_t r = 0; r < ids.size(0); ++r)
    if (r != 7) EXPECT_TRUE(at::equal(pos[r], stored[r])) << "row " << r;
  EXPECT_EQ(pos.masked_select(literal_pad).item<int64_t>(), f.config.pad_token_id);
  EXPECT_FALSE(at::equal(pos[7], stored[7]));
  {
    // Evidence: the mask-based positions would not reproduce the reference embeddings on that row.
    auto e = m.embeddings;
    at::Tensor x = at::embedding(e.word_embeddings, ids[7]) + e.token_type_embeddings[0];
    x = at::layer_norm(x + at::embedding(e.position_embeddings, stored[7]), {f.config.hidden}, e.layer_norm.weight,
                       e.layer_norm.bias, f.config.ln_eps);
    EXPECT_GT(max_abs(x, fixture(f.model, "text/embeddings_out")[7]), 1e-2);
  }
  BertStages st;
  auto h = m.forward(ids, mask, &st);
  const std::string tag = "clap " + GetParam() + " ";
  expect_close_rel(st.embeddings, fixture(f.model, "text/embeddings_out"), 1e-5, tag + "roberta embeddings");
  expect_close_rel(h, fixture(f.model, "text/last_hidden_state"), 1e-5, tag + "roberta last hidden");
  auto pooled = m.pool(h);
  expect_close_rel(pooled, fixture(f.model, "text/pooler_output"), 1e-5, tag + "roberta pooler");
  const int64_t H = f.config.hidden, J = fixture(f.model, "text/projected").size(1);
  auto proj = mlp(w, "text_projection.0", "text_projection.2", pooled, H, J);
  expect_close_rel(proj, fixture(f.model, "text/projected"), 1e-5, tag + "text projection");
  expect_embeddings_match(unit(proj), fixture(f.model, "text/normalized"), tag + "text normalized");
  expect_embeddings_match(unit(unit(proj)), fixture(f.model, "text/omnibind"), tag + "text omnibind");
}

TEST_P(ClapRoberta, Bf16TracksFloat32) {
  OMNIBIND_REQUIRE_SHARED();
  ClapText f(GetParam());
  auto m32 = BertModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "CLAP", "text_branch."));
  auto m16 =
      BertModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "CLAP", "text_branch."), at::kBFloat16);
  EXPECT_EQ(m16.layers[0].query.weight.scalar_type(), at::kBFloat16);
  auto ids = fixture(f.text, "text/input_ids"), mask = fixture(f.text, "text/attention_mask");
  auto p32 = m32.pool(m32.forward(ids, mask)), p16 = m16.pool(m16.forward(ids, mask));
  EXPECT_EQ(p16.scalar_type(), at::kFloat);
  const double c = min_cosine(p16, p32);
  std::printf("clap %s roberta pooler bf16 vs fp32 min cosine %.6f\n", GetParam().c_str(), c);
  EXPECT_GE(c, 0.99);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClapRoberta, ::testing::Values("fusion", "base"));

TEST(BertEncoder, RandomWeightsAndBadIds) {
  BertConfig c = bert_base_uncased();
  c.hidden = 16;
  c.heads = 2;
  c.layers = 1;
  c.intermediate = 32;
  c.vocab_size = 50;
  auto m = BertModel::load(c, WeightSource::random(at::kFloat, 3));
  auto ids = at::tensor(std::vector<int64_t>{101 % 50, 7, 9, 0}, at::kLong).view({1, 4});
  auto mask = at::tensor(std::vector<int64_t>{1, 1, 1, 0}, at::kLong).view({1, 4});
  auto h = m.forward(ids, mask);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{1, 4, 16}));
  EXPECT_TRUE(at::isfinite(h).all().item<bool>());
  auto bad = ids.clone();
  bad[0][1] = 50;
  EXPECT_NE(testkit::input_error_of([&] { m.forward(bad, mask); }).find("token ids outside"), std::string::npos);
  auto r = roberta_base();
  r.hidden = 8;
  r.heads = 2;
  r.layers = 1;
  r.intermediate = 16;
  auto mr = BertModel::load(r, WeightSource::random(at::kFloat, 1), at::kBFloat16);
  auto ids_r = at::tensor(std::vector<int64_t>{0, 100, 2, 1, 1}, at::kLong).view({1, 5});
  EXPECT_TRUE(
      at::equal(mr.position_ids(ids_r), at::tensor(std::vector<int64_t>{2, 3, 4, 1, 1}, at::kLong).view({1, 5})));
  auto pooled = mr.pool(mr.forward(ids_r, ids_r.ne(1).to(at::kLong)));
  EXPECT_EQ(pooled.sizes(), (std::vector<int64_t>{1, 8}));
}
