// Parity of the SigLIP towers with the siglip_mini fixtures (random weights at mini widths, official
// structure and key names; both released layouts: large16 = patch 16, so400m14 = patch 14 with
// pixels 378..383 unseen): every intermediate the fixture gives, pooled outputs, embeddings and
// logits from the reference's own pixel tensors and ids; then the expert end to end from the image
// files and texts; bf16; strict checkpoint checks.
//
// The fixture is provisional (a re-expression of transformers 4.37.2, see its README); it was checked
// against the transformers sources in docs/reference/siglip.md and no tensor of it disagrees with
// them, so every tensor is asserted as given.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/experts/siglip/siglip_config.h"
#include "omnibind/experts/siglip/siglip_expert.h"
#include "omnibind/experts/siglip/siglip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts::siglip;
using omnibind::experts::WeightSource;

namespace {

const char* kFolders[] = {"large16", "so400m14"};
const std::vector<std::string> kImages = {"dog_image",        "train",          "wide_car_333x100",
                                          "dog_gray_alpha_300x400", "very_wide_600x50", "tiny_rgb_7x5"};
const std::vector<std::string> kImageFiles = {"dog_image.jpg",        "train.jpeg",          "wide_car_333x100.png",
                                              "dog_gray_alpha_300x400.png", "very_wide_600x50.png", "tiny_rgb_7x5.png"};

std::string path(const std::string& folder, const std::string& rel) {
  return testkit::shared_path("fixtures/siglip_mini/" + folder + "/" + rel);
}

at::Tensor get(const tensor_io::SafetensorsFile& f, const std::string& key) {
  return tensor_io::to_tensor(f.tensors.at(key)).clone();
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}
double min_cosine(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble).reshape({-1, a.size(-1)}), b64 = b.to(at::kDouble).reshape({-1, b.size(-1)});
  return ((a64 * b64).sum(-1) / (a64.norm(2, {-1}) * b64.norm(2, {-1}))).min().item<double>();
}

struct Fixture {
  std::string folder;
  tensor_io::SafetensorsFile weights, model, vision, text;
  SiglipConfig config;
  explicit Fixture(const std::string& f)
      : folder(f),
        weights(tensor_io::read_safetensors(path(f, "weights.safetensors"))),
        model(tensor_io::read_safetensors(path(f, "expected_model.safetensors"))),
        vision(tensor_io::read_safetensors(path(f, "expected_vision.safetensors"))),
        text(tensor_io::read_safetensors(path(f, "expected_text.safetensors"))),
        config(load_config(path(f, "config.json"))) {}
  at::Tensor pixels() const {
    std::vector<at::Tensor> v;
    for (const auto& n : kImages) v.push_back(get(vision, n + "/pixel_values"));
    return at::stack(v);
  }
  at::Tensor ids() const { return get(text, "input_ids"); }
  std::vector<std::string> texts() const {
    std::ifstream in(path(folder, "inputs.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    const auto doc = nlohmann::json::parse(ss.str());
    std::vector<std::string> out;
    for (const auto& t : doc["texts"]) out.push_back(t["text"].get<std::string>());
    return out;
  }
};

void expect_close(const std::string& what, const at::Tensor& got, const at::Tensor& want, double tol) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double d = max_abs(got, want);
  std::printf("[ siglip parity ] %-44s max abs %.3g  min cos %.9f\n", what.c_str(), d, min_cosine(got, want));
  EXPECT_LE(d, tol) << what;
}

}  // namespace

TEST(SiglipParity, ConfigJsonMatchesTheMiniModels) {
  OMNIBIND_REQUIRE_SHARED();
  auto l = load_config(path("large16", "config.json"));
  EXPECT_EQ(l.dim(), 32);
  EXPECT_EQ(l.vision.mlp, 128);
  EXPECT_EQ(l.patch, 16);
  EXPECT_EQ(l.vision_tokens(), 576);
  EXPECT_EQ(l.vocab_size, 135);
  EXPECT_EQ(l.key, "SigLip_384");
  EXPECT_EQ(l.vision.act, omnibind::experts::vit::Activation::GeluTanh);
  auto s = load_config(path("so400m14", "config.json"));
  EXPECT_EQ(s.dim(), 36);
  EXPECT_EQ(s.vision.heads, 4);
  EXPECT_EQ(s.patch, 14);
  EXPECT_EQ(s.vision_tokens(), 729);
  EXPECT_EQ(s.key, "SigLip_400M_384");
}

TEST(SiglipParity, BuiltinSizesAreTheReleasedModels) {
  auto l = builtin_config("large16");
  EXPECT_EQ(l.key, "SigLip_384");
  EXPECT_EQ(l.vision_tokens(), 576);
  EXPECT_EQ(l.text.hidden, 1024);
  EXPECT_EQ(l.text.layers, 24);
  EXPECT_EQ(l.vision.mlp, 4096);
  auto s = builtin_config("so400m14");
  EXPECT_EQ(s.key, "SigLip_400M_384");
  EXPECT_EQ(s.vision_tokens(), 729);
  EXPECT_EQ(s.text.mlp, 4304);
  EXPECT_EQ(s.text.layers, 27);
  EXPECT_EQ(s.vocab_size, 32000);
  EXPECT_EQ(s.max_positions, 64);
  EXPECT_EQ(s.context, 64);
  // Parameter counts of the released files (the fixture README's formula values).
  auto count = [](const SiglipConfig& c) {
    auto layer = [](const TowerConfig& t) { return 4 * (t.hidden * t.hidden + t.hidden) + 2 * t.hidden * t.mlp + t.mlp + t.hidden + 4 * t.hidden; };
    const int64_t D = c.dim();
    const int64_t vision = D * 3 * c.patch * c.patch + D + c.vision_tokens() * D + c.vision.layers * layer(c.vision) + 2 * D +
                           D + 3 * D * D + 3 * D + D * D + D + 2 * D + 2 * D * c.vision.mlp + c.vision.mlp + D;
    const int64_t text = c.vocab_size * D + c.max_positions * D + c.text.layers * layer(c.text) + 2 * D + D * D + D;
    return std::pair<int64_t, int64_t>{vision, text};
  };
  EXPECT_EQ(count(l), (std::pair<int64_t, int64_t>{316283904, 336194560}));
  EXPECT_EQ(count(s), (std::pair<int64_t, int64_t>{428225600, 449734896}));
  EXPECT_NE(testkit::input_error_of([] { builtin_config("base16"); }).find("large16, so400m14"), std::string::npos);
}

TEST(SiglipParity, VisionIntermediatesPooledAndEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string folder : kFolders) {
    Fixture f(folder);
    auto m = SiglipModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "SigLIP"));
    auto px = f.pixels();
    VisionStages st;
    auto pooled = m.vision.forward(px, &st);
    expect_close(folder + " item0/vision_embeddings", st.embeddings[0], get(f.model, "item0/vision_embeddings"), 1e-5);
    expect_close(folder + " item0/vision_block0", st.block_out[0][0], get(f.model, "item0/vision_block0"), 1e-5);
    expect_close(folder + " item0/vision_post_layernorm", st.post_layernorm[0],
                 get(f.model, "item0/vision_post_layernorm"), 1e-5);
    expect_close(folder + " image/pooled", pooled, get(f.model, "image/pooled"), 1e-5);
    auto emb = m.image_embeds(px);
    expect_close(folder + " image/image_embeds", emb, get(f.model, "image/image_embeds"), 1e-5);
    auto want = get(f.model, "image/omnibind_embedding");
    EXPECT_GE(min_cosine(emb, want), 0.99999) << folder;
    EXPECT_LE(max_abs(emb, want), 1e-4) << folder;
  }
}

TEST(SiglipParity, TextIntermediatesPooledAndEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string folder : kFolders) {
    Fixture f(folder);
    auto m = SiglipModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "SigLIP"));
    auto ids = f.ids();
    TextStages st;
    auto pooled = m.text.forward(ids, &st);
    expect_close(folder + " item0/text_embeddings", st.embeddings[0], get(f.model, "item0/text_embeddings"), 1e-5);
    expect_close(folder + " item0/text_block0", st.block_out[0][0], get(f.model, "item0/text_block0"), 1e-5);
    expect_close(folder + " item0/text_final_layer_norm", st.final_layer_norm[0],
                 get(f.model, "item0/text_final_layer_norm"), 1e-5);
    expect_close(folder + " text/pooled", pooled, get(f.model, "text/pooled"), 1e-5);
    auto emb = m.text_embeds(ids);
    expect_close(folder + " text/text_embeds", emb, get(f.model, "text/text_embeds"), 1e-5);
    auto want = get(f.model, "text/omnibind_embedding");
    EXPECT_GE(min_cosine(emb, want), 0.99999) << folder;
    EXPECT_LE(max_abs(emb, want), 1e-4) << folder;
    // Each text alone gives its batch row (no mask, every row padded to 64: batch independent).
    auto alone = m.text_embeds(ids.slice(0, 3, 4));
    EXPECT_LE(max_abs(alone[0], emb[3]), 1e-6) << folder;
    // logits_per_text = text @ image^T * exp(logit_scale) + logit_bias (checks both scalars load).
    auto img = m.image_embeds(f.pixels());
    auto logits = at::matmul(emb, img.t()) * m.logit_scale.exp() + m.logit_bias;
    expect_close(folder + " logits_per_text", logits, get(f.model, "logits_per_text"), 1e-4);
  }
}

TEST(SiglipParity, So400mIgnoresPixelsPastTheLastPatch) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f("so400m14");
  auto m = SiglipModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "SigLIP"));
  auto px = f.pixels().slice(0, 0, 2);
  auto changed = px.clone();
  changed.slice(2, 378, 384).fill_(0.25);
  changed.slice(3, 378, 384).fill_(-0.75);
  EXPECT_TRUE(at::equal(m.image_embeds(px), m.image_embeds(changed)));
}

TEST(SiglipParity, ExpertEndToEndFromFilesAndTexts) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string folder : kFolders) {
    Fixture f(folder);
    experts::ExpertOptions o;
    o.weights = path(folder, "weights.safetensors");
    o.config = path(folder, "config.json");
    o.vocab_files = {path(folder, "spiece.model")};
    auto e = experts::make_siglip_expert(o);
    EXPECT_EQ(e->dim(), f.config.dim());
    EXPECT_EQ(e->key(), folder == "large16" ? "SigLip_384" : "SigLip_400M_384");
    std::vector<at::Tensor> imgs;
    for (const auto& file : kImageFiles)
      imgs.push_back(e->preprocess(experts::Modality::Image, experts::MediaInput::from_path(path(folder, "inputs/" + file))));
    EXPECT_TRUE(at::equal(at::stack(imgs), f.pixels())) << folder;
    auto img = e->encode(experts::Modality::Image, at::stack(imgs));
    auto want_img = get(f.model, "image/omnibind_embedding");
    std::printf("[ siglip expert ] %-8s image min cos %.9f max abs %.3g\n", folder.c_str(), min_cosine(img, want_img),
                max_abs(img, want_img));
    EXPECT_GE(min_cosine(img, want_img), 0.99999) << folder;
    EXPECT_LE(max_abs(img, want_img), 1e-4) << folder;
    std::vector<at::Tensor> ids;
    for (const auto& t : f.texts()) ids.push_back(e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(t)));
    EXPECT_TRUE(at::equal(at::stack(ids), f.ids())) << folder;
    auto txt = e->encode(experts::Modality::Text, at::stack(ids));
    auto want_txt = get(f.model, "text/omnibind_embedding");
    std::printf("[ siglip expert ] %-8s text  min cos %.9f max abs %.3g\n", folder.c_str(), min_cosine(txt, want_txt),
                max_abs(txt, want_txt));
    EXPECT_GE(min_cosine(txt, want_txt), 0.99999) << folder;
    EXPECT_LE(max_abs(txt, want_txt), 1e-4) << folder;
  }
}

TEST(SiglipParity, Bf16StaysCloseToTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string folder : kFolders) {
    Fixture f(folder);
    auto m = SiglipModel::load(f.config, WeightSource(f.weights.tensors, at::kBFloat16, "SigLIP"));
    const double ci = min_cosine(m.image_embeds(f.pixels()), get(f.model, "image/omnibind_embedding"));
    const double ct = min_cosine(m.text_embeds(f.ids()), get(f.model, "text/omnibind_embedding"));
    std::printf("[ siglip bf16 ] %-8s image min cos %.6f  text min cos %.6f\n", folder.c_str(), ci, ct);
    EXPECT_GE(ci, 0.9999) << folder;
    EXPECT_GE(ct, 0.9999) << folder;
  }
}

TEST(SiglipParity, SizeIsReadOffTheCheckpointWithoutSizeOrConfig) {
  OMNIBIND_REQUIRE_SHARED();
  // The mini checkpoint is neither released size: the message says so and asks for --config.
  experts::ExpertOptions o;
  o.weights = path("large16", "weights.safetensors");
  std::string msg = testkit::input_error_of([&] { experts::make_siglip_expert(o); });
  EXPECT_NE(msg.find("neither released SigLIP size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--config"), std::string::npos) << msg;
}

TEST(SiglipParity, StrictCheckpointChecks) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f("large16");
  const std::string dir = testkit::make_temp_dir("siglip_strict");
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& n : f.weights.tensors.names()) all.emplace_back(n, tensor_io::to_tensor(f.weights.tensors.at(n)));
  auto load = [&](const std::vector<std::pair<std::string, at::Tensor>>& ts) {
    const std::string p = dir + "/w.safetensors";
    tensor_io::write_tensors(p, ts);
    experts::ExpertOptions o;
    o.weights = p;
    o.config = path("large16", "config.json");
    return testkit::input_error_of([&] { experts::make_siglip_expert(o); });
  };
  // A missing tensor is named.
  auto missing = all;
  missing.erase(std::remove_if(missing.begin(), missing.end(), [](auto& p) { return p.first == "vision_model.head.probe"; }),
                missing.end());
  std::string msg = load(missing);
  EXPECT_NE(msg.find("vision_model.head.probe"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SigLIP"), std::string::npos) << msg;
  // An unexpected tensor is named (strict=True); position_ids buffers of older exports are fine.
  auto extra = all;
  extra.emplace_back("vision_model.head.extra_bias", at::zeros({32}));
  msg = load(extra);
  EXPECT_NE(msg.find("vision_model.head.extra_bias"), std::string::npos) << msg;
  auto with_ids = all;
  with_ids.emplace_back("text_model.embeddings.position_ids", at::arange(64, at::kLong).unsqueeze(0));
  EXPECT_EQ(load(with_ids), "");
  // A shape that does not fit the config is named.
  auto wrong = all;
  for (auto& p : wrong)
    if (p.first == "text_model.head.weight") p.second = at::zeros({32, 31});
  msg = load(wrong);
  EXPECT_NE(msg.find("text_model.head.weight"), std::string::npos) << msg;
  // A checkpoint of another family.
  experts::ExpertOptions o;
  o.weights = testkit::shared_path("fixtures/imagebind_mini/weights.safetensors");
  msg = testkit::input_error_of([&] { experts::make_siglip_expert(o); });
  EXPECT_NE(msg.find("not a SigLIP checkpoint"), std::string::npos) << msg;
  o.config = path("large16", "config.json");
  msg = testkit::input_error_of([&] { experts::make_siglip_expert(o); });
  EXPECT_NE(msg.find("SigLIP"), std::string::npos) << msg;
}

TEST(SiglipParity, BadInputsAreInputErrors) {
  OMNIBIND_REQUIRE_SHARED();
  experts::ExpertOptions o;
  o.weights = path("large16", "weights.safetensors");
  o.config = path("large16", "config.json");
  auto no_text = experts::make_siglip_expert(o);
  EXPECT_NE(testkit::input_error_of([&] { no_text->preprocess(experts::Modality::Text, experts::MediaInput::from_text("a dog")); })
                .find("--vocab spiece.model"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { no_text->preprocess(experts::Modality::Audio, experts::MediaInput::from_path("x.wav")); })
                .find("does not embed audio"),
            std::string::npos);
  o.vocab_files = {path("large16", "config.json")};
  EXPECT_NE(testkit::input_error_of([&] { experts::make_siglip_expert(o); }).find("not a SentencePiece model"),
            std::string::npos);
  // Bundles and serve carry one tokenizer path (bpe_vocab): it is the SentencePiece model here.
  o.vocab_files = {};
  o.bpe_vocab = path("large16", "spiece.model");
  EXPECT_EQ(experts::make_siglip_expert(o)->preprocess(experts::Modality::Text, experts::MediaInput::from_text("A Dog."))[1].item<int64_t>(), 28);
  o.bpe_vocab = "";
  o.vocab_files = {path("large16", "spiece.model")};
  auto e = experts::make_siglip_expert(o);
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "the quick brown fox ";
  std::string msg = testkit::input_error_of([&] { e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(long_text)); });
  EXPECT_NE(msg.find("more than the model's 64 positions"), std::string::npos) << msg;
  EXPECT_NE(testkit::input_error_of([&] { e->encode(experts::Modality::Text, at::full({1, 64}, 135, at::kLong)); })
                .find("outside [0, 135)"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { e->encode(experts::Modality::Image, at::zeros({1, 3, 224, 224})); })
                .find("expected [B, 3, 384, 384]"),
            std::string::npos);
}

TEST(SiglipParity, TextsArePaddedToTheTokenizersLengthNotThePositionTable) {
  OMNIBIND_REQUIRE_SHARED();
  // A model with 80 positions behind the released tokenizer (model_max_length 64): the reference pads
  // to 64 and pools position 63; the extra position rows are never used.
  Fixture f("large16");
  const std::string dir = testkit::make_temp_dir("siglip_ctx");
  std::ifstream in(path("large16", "config.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str());
  doc["text_config"]["max_position_embeddings"] = 80;
  std::ofstream(dir + "/config.json") << doc.dump();
  std::vector<std::pair<std::string, at::Tensor>> ts;
  for (const auto& n : f.weights.tensors.names()) {
    at::Tensor t = tensor_io::to_tensor(f.weights.tensors.at(n));
    if (n == "text_model.embeddings.position_embedding.weight") t = at::cat({t, at::randn({16, 32})});
    ts.emplace_back(n, t);
  }
  tensor_io::write_tensors(dir + "/w.safetensors", ts);
  experts::ExpertOptions o;
  o.weights = dir + "/w.safetensors";
  o.config = dir + "/config.json";
  o.vocab_files = {path("large16", "spiece.model")};
  auto e = experts::make_siglip_expert(o);
  auto ids = e->preprocess(experts::Modality::Text, experts::MediaInput::from_text("a photo of train"));
  ASSERT_EQ(ids.size(0), 64);
  auto emb = e->encode(experts::Modality::Text, ids.unsqueeze(0));
  EXPECT_GE(min_cosine(emb, get(f.model, "text/omnibind_embedding").slice(0, 0, 1)), 0.99999);
  // A tokenizer longer than the position table cannot run (the reference fails on every text).
  doc["text_config"]["max_position_embeddings"] = 64;
  doc["tokenizer_config"]["model_max_length"] = 65;
  std::ofstream(dir + "/config.json") << doc.dump();
  EXPECT_NE(testkit::input_error_of([&] { load_config(dir + "/config.json"); }).find("model_max_length 65"),
            std::string::npos);
  // A tokenizer that returns an attention_mask or does not lower-case is not what OmniBind runs.
  doc["tokenizer_config"]["model_max_length"] = 64;
  doc["tokenizer_config"]["model_input_names"] = {"input_ids", "attention_mask"};
  std::ofstream(dir + "/config.json") << doc.dump();
  EXPECT_NE(testkit::input_error_of([&] { load_config(dir + "/config.json"); }).find("attention_mask"),
            std::string::npos);
  doc["tokenizer_config"]["model_input_names"] = {"input_ids"};
  doc["tokenizer_config"]["do_lower_case"] = false;
  std::ofstream(dir + "/config.json") << doc.dump();
  EXPECT_NE(testkit::input_error_of([&] { load_config(dir + "/config.json"); }).find("do_lower_case"),
            std::string::npos);
}
