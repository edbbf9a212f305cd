// Parity of the ImageBind towers with the reference on the mini fixture (random weights, official
// structure): embeddings, head outputs and intermediate tokens, fed the reference's own
// preprocessed inputs.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>

#include "omnibind/common/error.h"
#include "omnibind/experts/imagebind/imagebind_config.h"
#include "omnibind/experts/imagebind/imagebind_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts::imagebind;
using omnibind::experts::WeightSource;

namespace {
const char* kDir = "fixtures/imagebind_mini/";
const std::vector<std::string> kImages = {"dog_image", "car_image", "bird_image", "wide_car_333x100",
                                          "dog_gray_alpha_300x400"};
const std::vector<std::string> kAudios = {"dog_audio", "car_audio", "bird_audio", "fsdd_0_george_0",
                                          "stereo_car_bird_44k"};

at::Tensor fixture(const tensor_io::SafetensorsFile& f, const std::string& key) {
  return tensor_io::to_tensor(f.tensors.at(key));
}

// Smallest row-wise cosine similarity between a and b ([N, d]).
double min_cosine(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble).reshape({-1, a.size(-1)}), b64 = b.to(at::kDouble).reshape({-1, b.size(-1)});
  auto cos = (a64 * b64).sum(-1) / (a64.norm(2, {-1}) * b64.norm(2, {-1}));
  return cos.min().item<double>();
}
double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).abs().max() / b.to(at::kDouble).abs().max()).item<double>();
}

struct Fixture {
  tensor_io::SafetensorsFile weights, model, vision, audio, text;
  ImageBindConfig config;
  Fixture()
      : weights(tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "weights.safetensors"))),
        model(tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "expected_model.safetensors"))),
        vision(tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "expected_vision.safetensors"))),
        audio(tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "expected_audio.safetensors"))),
        text(tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "expected_text.safetensors"))),
        config(load_config(testkit::shared_path(std::string(kDir) + "config.json"))) {}
  at::Tensor pixels() const {
    std::vector<at::Tensor> v;
    for (auto& n : kImages) v.push_back(fixture(vision, "vision/" + n));
    return at::stack(v);
  }
  at::Tensor melspecs() const {
    std::vector<at::Tensor> v;
    for (auto& n : kAudios) v.push_back(fixture(audio, "audio/" + n + "/melspec"));
    return at::stack(v);  // [5, 3, 1, 128, 204]
  }
  at::Tensor ids() const { return fixture(text, "text/token_ids"); }
};
}  // namespace

TEST(ImageBindParity, ConfigJsonMatchesTheMiniModel) {
  OMNIBIND_REQUIRE_SHARED();
  auto c = load_config(testkit::shared_path(std::string(kDir) + "config.json"));
  EXPECT_EQ(c.out_dim, 32);
  EXPECT_EQ(c.vision.dim, 64);
  EXPECT_EQ(c.text.dim, 16);
  EXPECT_EQ(c.audio.blocks, 2);
  EXPECT_EQ(c.vision_tokens(), 257);
  EXPECT_EQ(c.audio_tokens(), 229);
}

TEST(ImageBindParity, VisionEmbeddingsAndIntermediates) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto m = ImageBindModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "ImageBind"));
  auto px = f.pixels();
  auto tokens = m.vision_tokens(px);
  EXPECT_LT(max_rel(tokens[0], fixture(f.model, "vision/debug/preprocessed_tokens_0")), 1e-5);
  auto trunk = m.vision.trunk.forward(tokens, {});
  EXPECT_LT(max_rel(trunk[0], fixture(f.model, "vision/debug/trunk_output_0")), 1e-5);
  auto head = m.vision_head(trunk);
  EXPECT_GE(min_cosine(head, fixture(f.model, "vision/head_output")), 0.99999);
  auto emb = m.vision_embed(px);
  auto want = fixture(f.model, "vision/embedding");
  std::printf("vision fp32 min cosine %.9f max rel %.3g\n", min_cosine(emb, want), max_rel(emb, want));
  EXPECT_GE(min_cosine(emb, want), 0.99999);
  EXPECT_LT(max_rel(emb, want), 1e-5);
}

TEST(ImageBindParity, AudioEmbeddingsAndIntermediates) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto m = ImageBindModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "ImageBind"));
  auto clips = f.melspecs();
  auto flat = clips.reshape({-1, 1, 128, 204});
  auto tokens = m.audio_tokens(flat.slice(0, 0, 1));
  EXPECT_LT(max_rel(tokens[0], fixture(f.model, "audio/debug/preprocessed_tokens_0")), 1e-5);
  auto trunk = m.audio.trunk.forward(tokens, {});
  EXPECT_LT(max_rel(trunk[0], fixture(f.model, "audio/debug/trunk_output_0")), 1e-5);
  auto head = m.audio_forward(flat);  // per clip
  EXPECT_GE(min_cosine(head, fixture(f.model, "audio/head_output").reshape({-1, 32})), 0.99999);
  auto emb = m.audio_embed(clips);
  auto want = fixture(f.model, "audio/embedding");
  std::printf("audio fp32 min cosine %.9f max rel %.3g\n", min_cosine(emb, want), max_rel(emb, want));
  EXPECT_GE(min_cosine(emb, want), 0.99999);
  // Norms below the scale: clips are postprocessed and then averaged (not renormalised).
  EXPECT_LT(max_rel(emb.norm(2, {-1}), want.norm(2, {-1})), 1e-5);
}

TEST(ImageBindParity, TextEmbeddingsAndIntermediates) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto m = ImageBindModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "ImageBind"));
  auto ids = f.ids();
  auto tokens = m.text_tokens(ids);
  EXPECT_LT(max_rel(tokens[0], fixture(f.model, "text/debug/preprocessed_tokens_0")), 1e-6);
  auto trunk = m.text.trunk.forward(tokens, m.text.causal_mask);
  EXPECT_LT(max_rel(trunk[0], fixture(f.model, "text/debug/trunk_output_0")), 1e-5);
  EXPECT_GE(min_cosine(m.text_head(trunk, ids), fixture(f.model, "text/head_output")), 0.99999);
  auto emb = m.text_embed(ids);
  auto want = fixture(f.model, "text/embedding");
  std::printf("text fp32 min cosine %.9f max rel %.3g\n", min_cosine(emb, want), max_rel(emb, want));
  EXPECT_GE(min_cosine(emb, want), 0.99999);
  EXPECT_LT(max_rel(emb, want), 1e-5);
}

TEST(ImageBindParity, Bf16TracksFloat32) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto m32 = ImageBindModel::load(f.config, WeightSource(f.weights.tensors, at::kFloat, "ImageBind"));
  auto m16 = ImageBindModel::load(f.config, WeightSource(f.weights.tensors, at::kBFloat16, "ImageBind"));
  auto px = f.pixels();
  auto clips = f.melspecs();
  auto ids = f.ids();
  double v = min_cosine(m16.vision_embed(px), m32.vision_embed(px));
  double a = min_cosine(m16.audio_embed(clips), m32.audio_embed(clips));
  double t = min_cosine(m16.text_embed(ids), m32.text_embed(ids));
  std::printf("bf16 vs fp32 min cosine: vision %.6f audio %.6f text %.6f\n", v, a, t);
  EXPECT_GE(v, 0.999);
  EXPECT_GE(a, 0.999);
  EXPECT_GE(t, 0.999);
  EXPECT_EQ(m16.vision_embed(px).scalar_type(), at::kFloat);
}

TEST(ImageBindWeights, ForeignCheckpointNamesTheFirstMissingKey) {
  auto dir = testkit::make_temp_dir("ibw");
  auto path = dir + "/uni3d_head.safetensors";
  tensor_io::write_tensors(path, {{"point_encoder.cls_token", at::zeros({1, 1, 8})}});
  auto sd = tensor_io::read_safetensors(path);
  try {
    ImageBindModel::load(builtin_config("huge"), WeightSource(sd.tensors, at::kFloat, "ImageBind"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("modality_preprocessors.vision.cls_token"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(ImageBindWeights, WrongConfigNamesKeyAndBothShapes) {
  OMNIBIND_REQUIRE_SHARED();
  auto sd = tensor_io::read_safetensors(testkit::shared_path(std::string(kDir) + "weights.safetensors"));
  try {
    ImageBindModel::load(builtin_config("huge"), WeightSource(sd.tensors, at::kFloat, "ImageBind"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'modality_preprocessors.vision.cls_token' has shape [1, 1, 64], expected [1, 1, 1280]"),
              std::string::npos)
        << msg;
  }
}

TEST(ImageBindWeights, UnknownSizeAndBadConfigAreInputErrors) {
  EXPECT_THROW(builtin_config("gigantic"), InputError);
  auto dir = testkit::make_temp_dir("ibc");
  std::ofstream(dir + "/bad.json") << "{\"kwargs\": {\"vision_embed_dim\": 65, \"vision_num_heads\": 4}}";
  EXPECT_THROW(load_config(dir + "/bad.json"), InputError);
  std::ofstream(dir + "/junk.json") << "{not json";
  EXPECT_THROW(load_config(dir + "/junk.json"), InputError);
}
