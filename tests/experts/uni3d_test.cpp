// Uni3D expert parity against the uni3d_mini fixture: both fixture models (g_mini = EVA-01 giant
// layer types, tiny = EVA-02 GluMlp), every input file format, embeddings cosine >= 0.99999.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

#include "omnibind/common/error.h"
#include "omnibind/experts/uni3d/uni3d_expert.h"
#include "omnibind/experts/uni3d/uni3d_model.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::experts;
namespace tio = omnibind::tensor_io;

std::string fixture(const std::string& rel) { return testkit::shared_path("fixtures/uni3d_mini/" + rel); }

double cosine(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.flatten().to(at::kDouble), y = b.flatten().to(at::kDouble);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}
double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want.to(at::kDouble)).abs().max() / want.to(at::kDouble).abs().max()).item<double>();
}

struct Input {
  std::string key, file;
};
const std::vector<Input> kInputs = {
    {"train", "train.npy"},           {"toilet", "toilet.npy"},              {"BBQ", "BBQ.npy"},
    {"train", "train.ply"},           {"train", "train.safetensors"},        {"toilet", "toilet.ply"},
    {"toilet", "toilet.safetensors"}, {"BBQ", "BBQ.ply"},                    {"BBQ", "BBQ.safetensors"},
    {"mn10_chair_0890", "chair_0890.pcd"}, {"mn10_toilet_0345", "toilet_0345.pcd"}, {"mn10_monitor_0466", "monitor_0466.pcd"}};

// Embeds `inputs` one by one (or, for the expensive tiny model - 512 groups of 64 through the
// mini-PointNet, ~28 GFLOP per cloud - as one batch) and compares with the reference.
void check_model(const std::string& model, const std::string& weights, const std::vector<Input>& inputs, bool singles) {
  ExpertOptions o;
  o.config = fixture(model + "/config.json");
  o.weights = fixture(model + "/" + weights);
  auto expert = create_expert("uni3d", o);
  auto expected = tio::read_safetensors(fixture("expected_" + model + ".safetensors"));
  auto want = [&](const std::string& key) { return tio::to_tensor(expected.tensors.at(key)); };
  std::vector<at::Tensor> items;
  for (const auto& in : inputs) {
    at::Tensor x = expert->preprocess(Modality::Point, MediaInput::from_path(fixture("inputs/" + in.file)));
    items.push_back(x);
    if (!singles) continue;
    at::Tensor emb = expert->encode(Modality::Point, x.unsqueeze(0))[0];
    EXPECT_GE(cosine(emb, want(in.key + "/embedding_l2")), 0.99999) << model << " " << in.file;
    EXPECT_NEAR(emb.norm().item<double>(), 1.0, 1e-5);
  }
  // A batch gives the reference embeddings too.
  at::Tensor batch = expert->encode(Modality::Point, at::stack(items));
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_GE(cosine(batch[i], want(inputs[i].key + "/embedding_l2")), 0.99999) << model << " batched " << inputs[i].file;
}

TEST(Uni3dExpert, GMiniEmbeddingsMatchReferenceForEveryInput) {
  OMNIBIND_REQUIRE_SHARED();
  check_model("g_mini", "weights.safetensors", kInputs, true);
}

TEST(Uni3dExpert, TinyEmbeddingsMatchReferenceForEveryInput) {
  OMNIBIND_REQUIRE_SHARED();
  // One input per file format here (the six fixture inputs through tiny take minutes on 2 cores);
  // OMNIBIND_UNI3D_FULL_PARITY=1 runs every input file.
  std::vector<Input> inputs = {{"train", "train.npy"}, {"mn10_monitor_0466", "monitor_0466.pcd"}};
  if (std::getenv("OMNIBIND_UNI3D_FULL_PARITY")) inputs = kInputs;
  check_model("tiny", "weights.safetensors", inputs, false);
}

#if __has_include("omnibind/tensor_io/checkpoint.h")
TEST(Uni3dExpert, LoadsTorchSavedWeights) {
  OMNIBIND_REQUIRE_SHARED();
  check_model("g_mini", "weights.pt", {{"BBQ", "BBQ.ply"}, {"mn10_chair_0890", "chair_0890.pcd"}}, true);
}
#endif

// Every stage of g_mini against the reference, to localise a regression.
TEST(Uni3dExpert, GMiniStagesMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  ExpertOptions o;
  o.config = fixture("g_mini/config.json");
  o.weights = fixture("g_mini/weights.safetensors");
  uni3d::Uni3dExpert expert(o);
  auto expected = tio::read_safetensors(fixture("expected_g_mini.safetensors"));
  auto want = [&](const std::string& key) { return tio::to_tensor(expected.tensors.at(key)); };
  at::Tensor x = expert.preprocess(Modality::Point, MediaInput::from_path(fixture("inputs/train.ply")));
  const int64_t K = expert.config().group_size;
  uni3d::Uni3dStages st;
  expert.model().forward(x.narrow(1, 1, K).unsqueeze(0).contiguous(), x.select(1, 0).narrow(1, 0, 3).unsqueeze(0).contiguous(), &st);
  EXPECT_LT(max_rel(st.group_features[0], want("train/group_features")), 1e-5);
  EXPECT_LT(max_rel(st.tokens[0], want("train/tokens")), 1e-5);
  EXPECT_LT(max_rel(st.pos[0], want("train/pos")), 1e-5);
  EXPECT_LT(max_rel(st.transformer_in[0], want("train/transformer_in")), 1e-5);
  ASSERT_EQ(st.block_out.size(), 2u);
  EXPECT_LT(max_rel(st.block_out[0][0], want("train/block0_out")), 1e-5);
  EXPECT_LT(max_rel(st.block_out[1][0], want("train/transformer_out")), 1e-5);
  EXPECT_LT(max_rel(st.cls_fc_norm[0], want("train/cls_fc_norm")), 1e-5);
  EXPECT_LT(max_rel(st.embedding[0], want("train/embedding")), 1e-5);
}

TEST(Uni3dExpert, Bf16StaysCloseToFp32) {
  OMNIBIND_REQUIRE_SHARED();
  ExpertOptions o;
  o.config = fixture("g_mini/config.json");
  o.weights = fixture("g_mini/weights.safetensors");
  o.precision = "bf16";
  auto expert = create_expert("uni3d", o);
  auto expected = tio::read_safetensors(fixture("expected_g_mini.safetensors"));
  at::Tensor x = expert->preprocess(Modality::Point, MediaInput::from_path(fixture("inputs/toilet.ply")));
  at::Tensor emb = expert->encode(Modality::Point, x.unsqueeze(0))[0];
  EXPECT_GE(cosine(emb, tio::to_tensor(expected.tensors.at("toilet/embedding_l2"))), 0.99);
}

TEST(Uni3dExpert, WrongSizeForTheCheckpointIsAnInputError) {
  OMNIBIND_REQUIRE_SHARED();
  ExpertOptions o;
  o.size = "tiny";  // the fixture tiny has 1 block, the real tiny 12
  o.weights = fixture("tiny/weights.safetensors");
  EXPECT_THROW(create_expert("uni3d", o), InputError);
  o.size = "huge";
  EXPECT_THROW(create_expert("uni3d", o), InputError);
}

TEST(Uni3dExpert, PresetsHaveTheReferenceWidths) {
  auto g = uni3d::uni3d_preset("giant"), l = uni3d::uni3d_preset("large"), b = uni3d::uni3d_preset("base"),
       s = uni3d::uni3d_preset("small"), t = uni3d::uni3d_preset("tiny");
  EXPECT_EQ(g.width, 1408); EXPECT_EQ(g.depth, 40); EXPECT_EQ(g.mlp_hidden, 6144); EXPECT_TRUE(g.qkv_fused);
  EXPECT_EQ(l.width, 1024); EXPECT_EQ(l.depth, 24); EXPECT_EQ(l.mlp_hidden, 2730); EXPECT_FALSE(l.qkv_fused);
  EXPECT_EQ(b.width, 768); EXPECT_EQ(b.depth, 12); EXPECT_EQ(b.mlp_hidden, 2048);
  EXPECT_EQ(s.width, 384); EXPECT_EQ(s.heads, 6); EXPECT_EQ(s.mlp_hidden, 1024); EXPECT_TRUE(s.mlp == uni3d::MlpKind::Glu);
  EXPECT_EQ(t.width, 192); EXPECT_EQ(t.heads, 3); EXPECT_EQ(t.mlp_hidden, 512);
  for (const auto& c : {g, l, b, s, t}) {
    EXPECT_EQ(c.embed_dim, 1024);
    EXPECT_EQ(c.num_group, 512);
    EXPECT_EQ(c.group_size, 64);
    EXPECT_EQ(c.pc_encoder_dim, 512);
  }
}

}  // namespace
