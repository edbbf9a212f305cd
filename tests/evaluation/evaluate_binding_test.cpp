// The evaluation table on a hand-made model whose every number can be predicted: identity projector heads
// (Linear [I; -I] -> BN(identity) -> ReLU -> Linear [I, -I] -> BN(identity) gives x back) and routers whose
// last layer is all bias, so routing weights are fixed and known.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::evaluation;

namespace {

constexpr int64_t D = 8;

// Identity heads for every projected space, and routers whose output is a constant bias.
tensor_io::StateDict identity_model(const binding::BindingConfig& c, const std::map<std::string, std::vector<float>>& bias) {
  tensor_io::StateDict sd("hand-made");
  auto add = [&](const std::string& k, at::Tensor t) { sd.add(k, tensor_io::from_tensor(t.contiguous())); };
  auto bn = [&](const std::string& p, int64_t n) {
    add(p + ".weight", at::ones({n}));
    add(p + ".bias", at::zeros({n}));
    add(p + ".running_mean", at::zeros({n}));
    add(p + ".running_var", at::full({n}, 1.0f - 1e-5f));  // exactly 1 after eps
    add(p + ".num_batches_tracked", at::zeros({}, at::kLong));
  };
  int64_t idx = 0;
  for (auto* e : c.projected_experts())
    for (int64_t k = 0; k < c.heads_per_space; ++k) {
      const std::string p = "projs." + std::to_string(idx++) + ".Head2.mlps.";
      add(p + "0.weight", at::cat({at::eye(D), -at::eye(D)}, 0));
      add(p + "0.bias", at::zeros({2 * D}));
      bn(p + "1", 2 * D);
      add(p + "3.weight", at::cat({at::eye(D), -at::eye(D)}, 1));
      add(p + "3.bias", at::zeros({D}));
      bn(p + "4", D);
    }
  for (auto& m : binding::all_modalities()) {
    auto slots = c.slots(m);
    if (slots.empty()) continue;
    const std::string p = binding::router_prefix(m);
    const int64_t in = static_cast<int64_t>(c.router_inputs.at(m).size()) * D;
    add(p + "0.weight", at::zeros({4, in}));
    add(p + "0.bias", at::zeros({4}));
    bn(p + "1", 4);
    add(p + "3.weight", at::zeros({3, 4}));
    add(p + "3.bias", at::zeros({3}));
    bn(p + "4", 3);
    add(p + "6.weight", at::zeros({static_cast<int64_t>(slots.size()), 3}));
    add(p + "6.bias", at::tensor(bias.at(m)));
  }
  return sd;
}

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true); }

// Two experts of width D: A (audio, text) is the projected one, B (image, text) the backbone (in output).
binding::BindingConfig config() {
  binding::BindingConfig c;
  c.experts = {{"A", {"audio", "text"}, D, {}}, {"B", {"image", "text"}, D, {}}};
  c.backbone = "B";
  c.backbone_in_output = true;
  c.heads_per_space = 2;
  c.router_inputs = {{"audio", {"A"}}, {"image", {"B"}}, {"text", {"A", "B"}}};
  return c;
}

// 40 tuples over 4 classes; A is exact on audio/text, B is noisy on text and exact on images.
EvalSet eval_set() {
  at::manual_seed(3);
  EvalSet s;
  s.num_classes = 4;
  const int64_t N = 40;
  at::Tensor label = at::arange(N, at::kLong).remainder(4);
  at::Tensor z = unit(at::eye(D).slice(0, 0, 4).index_select(0, label) + 0.3 * at::randn({N, D}));
  at::Tensor pair = at::arange(N, at::kLong);
  s.modalities["audio"] = {{{"A", z}}, label, {}, pair, {}};
  s.modalities["image"] = {{{"B", z}}, label, {}, pair, {}};
  s.modalities["text"] = {{{"A", z}, {"B", unit(z + 0.8 * at::randn({N, D}))}}, label, {}, pair, {}};
  s.prompt_class = at::tensor(std::vector<int64_t>{0, 0, 1, 2, 3});
  at::Tensor p = at::eye(D).slice(0, 0, 4).index_select(0, s.prompt_class);
  s.prompts = {{"A", p}, {"B", p}};
  return s;
}

}  // namespace

TEST(EvaluateBinding, TableRowsMatchDirectMetricComputations) {
  auto cfg = config();
  // text router bias: sigmoid(2) * 10 vs sigmoid(-2) * 10 -> weights ~ (0.9995, 0.0005) towards A.
  auto model = binding::OmniBindModel::load(identity_model(cfg, {{"audio", {0.f}}, {"image", {0.f}}, {"text", {2.f, -2.f}}}), cfg);
  EvalSet set = eval_set();
  EvalTable t = evaluate_binding(set, model);

  std::vector<std::string> keys;
  for (auto& task : t.tasks) keys.push_back(task.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"zero-shot/audio", "zero-shot/image", "audio->image", "image->audio",
                                            "audio->text", "text->audio", "image->text", "text->image"}));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(t.rows[0].name, "A (raw space)");
  EXPECT_EQ(t.rows[1].name, "B (raw space)");
  EXPECT_EQ(t.rows[2].name, "uniform routing");
  EXPECT_EQ(t.rows[3].name, "learned routing");

  // A in its raw space: audio zero-shot and audio<->text only.
  const EvalRow& a = t.rows[0];
  EXPECT_TRUE(a.covers(t.tasks[0]));
  EXPECT_FALSE(a.covers(t.tasks[1]));
  EXPECT_EQ(a.retrieval.count("audio->image"), 0u);
  auto& am = set.modalities["audio"];
  auto direct = zero_shot_accuracy(am.experts["A"], am.label, class_embeddings(set.prompts["A"], set.prompt_class, 4));
  EXPECT_DOUBLE_EQ(a.zero_shot.at("zero-shot/audio").top1, direct.top1);
  EXPECT_DOUBLE_EQ(a.retrieval.at("audio->text").r1, 1.0);  // identical rows

  // Learned routing: audio and image pass through unchanged (one slot, identity heads); text ~ A's text.
  const EvalRow& learned = t.rows[3];
  for (auto& task : t.tasks) EXPECT_TRUE(learned.covers(task)) << task.key();
  EXPECT_DOUBLE_EQ(learned.retrieval.at("audio->image").r1, 1.0);
  EXPECT_DOUBLE_EQ(learned.retrieval.at("audio->text").r1, 1.0);
  // Uniform routing mixes A's exact and B's noisy text half and half: below learned on text retrieval.
  const EvalRow& uniform = t.rows[2];
  at::Tensor ut = unit(set.modalities["text"].experts["A"] + set.modalities["text"].experts["B"]);
  auto ur = retrieval_recall(am.experts["A"], am.pair, ut, am.pair);
  EXPECT_NEAR(uniform.retrieval.at("audio->text").r1, ur.r1, 1e-12);
  EXPECT_LT(uniform.retrieval.at("audio->text").r1, 1.0);
  EXPECT_GT(t.composite(learned), t.composite(uniform));
  EXPECT_GT(t.composite(learned), t.composite(a));
  EXPECT_NEAR(t.covered_mean(a), (a.headline(t.tasks[0]) + a.headline(t.tasks[4]) + a.headline(t.tasks[5])) / 3, 1e-12);
}

TEST(EvaluateBinding, ReportsAreWrittenAtomicallyAsJsonAndMarkdown) {
  auto cfg = config();
  auto model = binding::OmniBindModel::load(identity_model(cfg, {{"audio", {0.f}}, {"image", {0.f}}, {"text", {0.f, 0.f}}}), cfg);
  EvalTable t = evaluate_binding(eval_set(), model);
  const std::string dir = testkit::make_temp_dir("eval_reports");
  const std::string json = dir + "/eval.json", md = dir + "/eval.md";
  write_eval_table(t, json, md);
  const std::string j = read_file_bytes(json), m = read_file_bytes(md);
  EXPECT_NE(j.find("\"learned routing\""), std::string::npos);
  EXPECT_NE(j.find("\"audio->text\""), std::string::npos);
  EXPECT_NE(m.find("| uniform routing |"), std::string::npos);
  EXPECT_NE(m.find("audio→text R@1 / R@5 / R@10"), std::string::npos);
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);  // no temporaries left behind
}

TEST(EvaluateBinding, MissingExpertEmbeddingsAreAnInputError) {
  auto cfg = config();
  auto model = binding::OmniBindModel::load(identity_model(cfg, {{"audio", {0.f}}, {"image", {0.f}}, {"text", {0.f, 0.f}}}), cfg);
  EvalSet set = eval_set();
  set.modalities["text"].experts.erase("B");
  try {
    evaluate_binding(set, model);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'B'"), std::string::npos) << e.what();
  }
}

TEST(SyntheticWorld, ShapesAndDeterminism) {
  SyntheticWorldOptions o;
  o.train_rows = 50;
  o.eval_tuples = 20;
  auto w1 = make_synthetic_world(o), w2 = make_synthetic_world(o);
  EXPECT_EQ(w1.train.at("audio").experts.size(), 2u);
  EXPECT_EQ(w1.train.at("text").experts.size(), 4u);
  EXPECT_EQ(w1.train.at("point").experts.count("U3D"), 1u);
  EXPECT_EQ(w1.train.at("audio").experts.count("U3D"), 0u);  // no expert covers audio and point
  EXPECT_EQ(w1.eval.prompts.at("CLIP").size(0), 16 * 3);
  EXPECT_TRUE(at::equal(w1.eval.modalities.at("text").experts.at("AT_A"), w2.eval.modalities.at("text").experts.at("AT_A")));
  at::Tensor n = w1.train.at("image").experts.at("CLIP").norm(2, 1);
  EXPECT_TRUE(at::allclose(n, at::ones_like(n), 1e-5, 1e-5));
  auto cfg = w1.binding_config();
  EXPECT_EQ(cfg.slots("text"), (std::vector<std::string>{"AT_A", "AT_B", "U3D", "CLIP"}));
  EXPECT_EQ(cfg.slots("point"), (std::vector<std::string>{"U3D"}));
}
