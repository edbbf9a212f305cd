// The "open_clip" expert (DFN5B-CLIP-ViT-H-14, OmniBind DFN_H14) against ../shared/fixtures/dfn_clip_mini
// (open_clip 2.24.0 run through create_model_from_pretrained('hf-hub:apple/DFN5B-CLIP-ViT-H-14') with
// reduced widths): pixel tensors bit-identical, token ids and pooling index identical, every item-0
// intermediate within float32-reordering distance, embeddings cosine >= 0.99999 and max abs <= 1e-4
// for every image and text, from both weight files, in fp32 (bf16 checked loosely).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/experts/open_clip/open_clip_config.h"
#include "omnibind/experts/open_clip/open_clip_expert.h"
#include "omnibind/experts/open_clip/open_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::experts;
namespace tio = omnibind::tensor_io;

std::string fx(const std::string& rel) { return testkit::shared_path("fixtures/dfn_clip_mini/" + rel); }
std::string bpe() { return testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"); }

double cosine(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.flatten().to(at::kDouble), y = b.flatten().to(at::kDouble);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}
double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

struct Fixture {
  nlohmann::json inputs;
  tio::SafetensorsFile vision, text, model;
  Fixture()
      : vision(tio::read_safetensors(fx("expected_vision.safetensors"))),
        text(tio::read_safetensors(fx("expected_text.safetensors"))),
        model(tio::read_safetensors(fx("expected_model.safetensors"))) {
    std::ifstream in(fx("inputs.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    inputs = nlohmann::json::parse(ss.str());
  }
  static at::Tensor get(const tio::SafetensorsFile& f, const std::string& k) { return tio::to_tensor(f.tensors.at(k)); }
  std::vector<std::string> image_files() const {
    std::vector<std::string> v;
    for (const auto& i : inputs["images"]) v.push_back(i["file"].get<std::string>());
    return v;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> v;
    for (const auto& t : inputs["texts"]) v.push_back(t["text"].get<std::string>());
    return v;
  }
};

std::string stem(const std::string& file) { return file.substr(0, file.rfind('.')); }

std::unique_ptr<Expert> mini_expert(const std::string& weights, const std::string& precision = "fp32") {
  ExpertOptions o;
  o.weights = fx(weights);
  o.config = fx("config.json");
  o.bpe_vocab = bpe();
  o.precision = precision;
  return create_expert("open_clip", o);
}

TEST(OpenClipConfig, FixtureConfigAndBuiltin) {
  OMNIBIND_REQUIRE_SHARED();
  auto c = open_clip::load_config(fx("config.json"));
  EXPECT_EQ(c.embed_dim, 48);
  EXPECT_TRUE(c.quick_gelu);
  EXPECT_EQ(c.vision_width, 64);
  EXPECT_EQ(c.vision_heads(), 4);
  EXPECT_EQ(c.vision_mlp(), 256);
  EXPECT_EQ(c.vision_tokens(), 257);
  EXPECT_EQ(c.text_width, 32);
  EXPECT_EQ(c.text_heads, 4);
  EXPECT_EQ(c.text_mlp(), 128);
  EXPECT_EQ(c.resize_mode, open_clip::ResizeMode::Squash);
  auto h = open_clip::builtin_config("dfn5b-h14");
  EXPECT_EQ(h.vision_heads(), 16);
  EXPECT_EQ(h.vision_mlp(), 5120);
  EXPECT_EQ(h.text_mlp(), 4096);
  EXPECT_TRUE(h.quick_gelu);
  EXPECT_EQ(h.resize_mode, open_clip::ResizeMode::Squash);
  EXPECT_NE(testkit::input_error_of([] { open_clip::builtin_config("giant"); }).find("dfn5b-h14"), std::string::npos);
}

TEST(OpenClipConfig, RejectsWhatIsNotPortedAndUnknownKeys) {
  auto dir = testkit::make_temp_dir("oc_cfg");
  auto write = [&](const std::string& body) {
    std::ofstream(dir + "/c.json") << body;
    return dir + "/c.json";
  };
  const std::string ok = R"("embed_dim": 8, "vision_cfg": {"width": 16, "layers": 1, "head_width": 8, "patch_size": 14},
                           "text_cfg": {"width": 16, "heads": 2, "layers": 1})";
  auto c = open_clip::load_config(write("{" + ok + "}"));  // bare model_cfg, open_clip defaults elsewhere
  EXPECT_FALSE(c.quick_gelu);
  EXPECT_EQ(c.resize_mode, open_clip::ResizeMode::Shortest);
  EXPECT_EQ(c.context_length, 77);
  auto hub = open_clip::load_config(
      write(R"({"model_cfg": {)" + ok + R"(, "quick_gelu": true}, "preprocess_cfg": {"resize_mode": "squash"}})"));
  EXPECT_TRUE(hub.quick_gelu);
  EXPECT_EQ(hub.resize_mode, open_clip::ResizeMode::Squash);
  auto err = [&](const std::string& body) { return testkit::input_error_of([&] { open_clip::load_config(write(body)); }); };
  EXPECT_NE(err(R"({"embed_dim": 8, "vision_cfg": {"timm_model_name": "vit"}, "text_cfg": {}})").find("timm_model_name"),
            std::string::npos);
  EXPECT_NE(err(R"({"embed_dim": 8, "vision_cfg": {"attentional_pool": true}, "text_cfg": {}})").find("attentional_pool"),
            std::string::npos);
  EXPECT_NE(err(R"({"embed_dim": 8, "vision_cfg": {}, "text_cfg": {"hf_model_name": "roberta"}})").find("hf_model_name"),
            std::string::npos);
  EXPECT_NE(err(R"({"embed_dim": 8, "vision_cfg": {"widht": 3}, "text_cfg": {}})").find("vision_cfg.widht"),
            std::string::npos);
  EXPECT_NE(err(R"({"model_cfg": {)" + ok + R"(}, "preprocess_cfg": {"resize_mode": "longest"}})").find("resize_mode"),
            std::string::npos);
  EXPECT_NE(err(R"({"embed_dim": 8, "vision_cfg": {"width": 10, "head_width": 4}, "text_cfg": {}})").find("head_width"),
            std::string::npos);
  EXPECT_NE(err("[1, 2]").find("c.json"), std::string::npos);
  EXPECT_NE(err("{not json").find("not valid JSON"), std::string::npos);
}

TEST(OpenClipParity, TokenIdsAndPoolingIndex) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  preprocess::ClipTokenizer tok(bpe(), preprocess::ClipTokenizer::Specials::OpenClip);
  at::Tensor ids = tok.tokenize(f.texts(), 77);
  at::Tensor want = Fixture::get(f.text, "token_ids");
  ASSERT_EQ(ids.sizes(), want.sizes());
  for (int64_t r = 0; r < ids.size(0); ++r)
    EXPECT_TRUE(at::equal(ids[r], want[r])) << "row " << r << " " << f.inputs["texts"][r]["name"];
  EXPECT_TRUE(at::equal(vit::first_argmax(ids), Fixture::get(f.text, "argmax_index")));
  // The OpenAI spelling is ordinary text for open_clip (and vice versa).
  at::Tensor openai = tok.tokenize({"a <|endoftext|> b"}, 77);
  EXPECT_EQ(vit::first_argmax(openai)[0].item<int64_t>(), openai.ne(0).sum().item<int64_t>() - 1);
  at::Tensor upper = tok.tokenize({"a dog <END_OF_TEXT> and"}, 77);
  EXPECT_EQ(upper[0][3].item<int64_t>(), preprocess::ClipTokenizer::kEot);
}

TEST(OpenClipParity, PixelTensorsAreIdentical) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto expert = mini_expert("weights.safetensors");
  for (const auto& file : f.image_files()) {
    at::Tensor got = expert->preprocess(Modality::Image, MediaInput::from_path(fx("inputs/" + file)));
    at::Tensor want = Fixture::get(f.vision, stem(file) + "/pixel_values");
    ASSERT_EQ(got.sizes(), want.sizes()) << file;
    EXPECT_TRUE(at::equal(got, want)) << file << " max abs " << max_abs(got, want);
  }
}

// Every intermediate the fixture gives for item 0, from the reference pixel tensor and token ids.
TEST(OpenClipParity, IntermediatesOfItemZero) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto sd = open_weights(fx("weights.safetensors"));
  auto model = open_clip::OpenClipModel::load(WeightSource(sd, at::kFloat, "open_clip"), open_clip::load_config(fx("config.json")));
  auto want = [&](const std::string& k) { return Fixture::get(f.model, k); };

  at::Tensor px = Fixture::get(f.vision, stem(f.image_files()[0]) + "/pixel_values").unsqueeze(0);
  open_clip::VisionStages vs;
  at::Tensor feat = model.encode_image(px, &vs);
  const std::vector<std::pair<std::string, at::Tensor>> vision = {
      {"vision/item0/conv1", vs.conv1[0]},          {"vision/item0/tokens_in", vs.tokens_in[0]},
      {"vision/item0/ln_pre", vs.ln_pre[0]},        {"vision/item0/block0_out", vs.block_out.front()[0]},
      {"vision/item0/last_block_out", vs.block_out.back()[0]}, {"vision/item0/ln_post", vs.ln_post[0]},
      {"vision/item0/pooled", vs.pooled[0]}};
  for (const auto& [k, got] : vision) {
    const double tol = 1e-5 * std::max(1.0, want(k).abs().max().item<double>());
    EXPECT_LE(max_abs(got, want(k)), tol) << k;
  }
  EXPECT_LE(max_abs(feat[0], want("image/features")[0]), 1e-5);

  at::Tensor ids = Fixture::get(f.text, "token_ids");
  vit::ClipTextStages ts;
  at::Tensor tfeat = model.encode_text(ids, &ts);
  const std::vector<std::pair<std::string, at::Tensor>> text = {
      {"text/item0/token_embedding", ts.token_embedding[0]}, {"text/item0/block0_out", ts.block_out.front()[0]},
      {"text/item0/last_block_out", ts.block_out.back()[0]}, {"text/item0/ln_final", ts.ln_final[0]},
      {"text/item0/pooled", ts.pooled[0]}};
  for (const auto& [k, got] : text) {
    const double tol = 1e-5 * std::max(1.0, want(k).abs().max().item<double>());
    EXPECT_LE(max_abs(got, want(k)), tol) << k;
  }
  EXPECT_TRUE(at::equal(ts.pool_index, Fixture::get(f.text, "argmax_index")));
  EXPECT_LE(max_abs(tfeat, want("text/features")), 1e-5);
}

// From files to OmniBind's embeddings, one by one and as a batch, from both weight files.
TEST(OpenClipParity, EmbeddingsOfEveryImageAndText) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  at::Tensor want_img = Fixture::get(f.model, "image/omnibind_embedding");
  at::Tensor want_txt = Fixture::get(f.model, "text/omnibind_embedding");
  for (const std::string weights : {"weights.pt", "weights.safetensors"}) {
    auto expert = mini_expert(weights);
    EXPECT_EQ(expert->dim(), 48);
    EXPECT_EQ(expert->key(), "DFN_H14");
    std::vector<at::Tensor> px;
    const auto files = f.image_files();
    for (size_t i = 0; i < files.size(); ++i) {
      px.push_back(expert->preprocess(Modality::Image, MediaInput::from_path(fx("inputs/" + files[i]))));
      at::Tensor e = expert->encode(Modality::Image, px.back().unsqueeze(0))[0];
      EXPECT_GE(cosine(e, want_img[i]), 0.99999) << weights << " " << files[i];
      EXPECT_LE(max_abs(e, want_img[i]), 1e-4) << weights << " " << files[i];
    }
    at::Tensor batch = expert->encode(Modality::Image, at::stack(px));
    EXPECT_LE(max_abs(batch, want_img), 1e-4) << weights;

    const auto texts = f.texts();
    std::vector<at::Tensor> ids;
    for (size_t i = 0; i < texts.size(); ++i) {
      ids.push_back(expert->preprocess(Modality::Text, MediaInput::from_text(texts[i])));
      at::Tensor e = expert->encode(Modality::Text, ids.back().unsqueeze(0))[0];
      EXPECT_GE(cosine(e, want_txt[i]), 0.99999) << weights << " text " << i;
      EXPECT_LE(max_abs(e, want_txt[i]), 1e-4) << weights << " text " << i;
    }
    EXPECT_LE(max_abs(expert->encode(Modality::Text, at::stack(ids)), want_txt), 1e-4) << weights;
  }
  // Bytes in memory give the same pixels as the file.
  auto expert = mini_expert("weights.safetensors");
  std::ifstream in(fx("inputs/train.jpeg"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(at::equal(expert->preprocess(Modality::Image, MediaInput::from_bytes(bytes, "train.jpeg")),
                        Fixture::get(f.vision, "train/pixel_values")));
}

TEST(OpenClipParity, Bf16StaysClose) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto expert = mini_expert("weights.safetensors", "bf16");
  at::Tensor px = at::stack({Fixture::get(f.vision, "dog_image/pixel_values"), Fixture::get(f.vision, "train/pixel_values")});
  at::Tensor e = expert->encode(Modality::Image, px);
  at::Tensor want = Fixture::get(f.model, "image/omnibind_embedding");
  for (int i = 0; i < 2; ++i) EXPECT_GE(cosine(e[i], want[i]), 0.999) << i;
  at::Tensor t = expert->encode(Modality::Text, Fixture::get(f.text, "token_ids"));
  at::Tensor wt = Fixture::get(f.model, "text/omnibind_embedding");
  for (int i = 0; i < t.size(0); ++i) EXPECT_GE(cosine(t[i], wt[i]), 0.999) << i;
}

TEST(OpenClipExpert, BadWeightsAndInputs) {
  OMNIBIND_REQUIRE_SHARED();
  // Another family's checkpoint: the first missing open_clip key is named.
  ExpertOptions o;
  o.weights = testkit::shared_path("fixtures/eva02_clip_mini/weights.safetensors");
  o.config = fx("config.json");
  EXPECT_NE(testkit::input_error_of([&] { create_expert("open_clip", o); }).find("missing tensor 'visual.conv1.weight'"),
            std::string::npos);
  // The right family at the wrong size: the mismatched tensor and both shapes are named.
  o.weights = fx("weights.safetensors");
  o.config.clear();  // the built-in released size
  EXPECT_NE(testkit::input_error_of([&] { create_expert("open_clip", o); }).find("has shape"), std::string::npos);
  // Missing keys (a tensor dropped) and unexpected keys (one added).
  auto dir = testkit::make_temp_dir("oc_bad");
  auto sd = open_weights(fx("weights.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> dropped, extra;
  for (const auto& n : sd.names()) {
    at::Tensor t = tio::to_tensor(sd.at(n));
    if (n != "visual.ln_post.bias") dropped.emplace_back(n, t);
    extra.emplace_back(n, t);
  }
  extra.emplace_back("visual.head.weight", at::zeros({2, 2}));
  tio::write_torch_checkpoint(dir + "/dropped.pt", dropped);
  tio::write_checkpoint(dir + "/extra.safetensors", extra);
  o.config = fx("config.json");
  o.weights = dir + "/dropped.pt";
  EXPECT_NE(testkit::input_error_of([&] { create_expert("open_clip", o); }).find("visual.ln_post.bias"), std::string::npos);
  o.weights = dir + "/extra.safetensors";
  EXPECT_NE(testkit::input_error_of([&] { create_expert("open_clip", o); }).find("visual.head.weight"), std::string::npos);

  auto expert = mini_expert("weights.safetensors");
  EXPECT_NE(testkit::input_error_of([&] { expert->preprocess(Modality::Audio, MediaInput::from_path("x.wav")); })
                .find("image, text"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { expert->preprocess(Modality::Text, MediaInput::from_text("bad \xff")); })
                .find("UTF-8"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { expert->encode(Modality::Image, at::zeros({1, 3, 32, 32})); }).find("[1, 3, 32, 32]"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { expert->encode(Modality::Text, at::full({1, 77}, 60000, at::kLong)); })
                .find("outside"),
            std::string::npos);
}

}  // namespace
