// Router validation (issue 16, training/router_validation.h): the held-out split, the pseudo-tuple retrieval
// score, the fallback to exactly uniform routing, and determinism / resume with validation on.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/router_validation.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

TEST(RouterValidation, SplitIsSeededDisjointAndComplete) {
  RouterSplit a = split_router_tuples(1000, 0.1, 7), b = split_router_tuples(1000, 0.1, 7), c = split_router_tuples(1000, 0.1, 8);
  EXPECT_EQ(a.val.size(0), 100);
  EXPECT_EQ(a.train.size(0), 900);
  EXPECT_TRUE(at::equal(a.val, b.val));
  EXPECT_FALSE(at::equal(a.val, c.val));
  at::Tensor all = std::get<0>(at::cat({a.train, a.val}).sort());
  EXPECT_TRUE(at::equal(all, at::arange(1000, at::kLong)));
  // Too few tuples to hold out min_val of them, or fraction 0: nothing held out, every tuple trains.
  EXPECT_EQ(split_router_tuples(300, 0.1, 7).val.size(0), 0);
  EXPECT_EQ(split_router_tuples(300, 0.1, 7).train.size(0), 300);
  EXPECT_EQ(split_router_tuples(5000, 0.0, 7).val.size(0), 0);
}

TEST(RouterValidation, ScoreIsOneForAlignedTuplesAndLowForShuffledOnes) {
  at::manual_seed(3);
  at::Tensor x = at::randn({512, 16});
  x = x / x.norm(2, 1, true);
  at::Tensor present = at::ones({512}, at::kBool);
  EXPECT_DOUBLE_EQ(pseudo_retrieval_score({{"audio", x}, {"text", x}}, {{"audio", present}, {"text", present}}), 1.0);
  at::Tensor shuffled = x.index_select(0, at::randperm(512, at::kLong));
  EXPECT_LT(pseudo_retrieval_score({{"audio", x}, {"text", shuffled}}, {{"audio", present}, {"text", present}}), 0.05);
}

struct ToyRun {
  fs::path dir;
  binding::BindingConfig config = binding::parse_binding_config(toy::kConfigJson, "toy");
};

TrainOptions toy_options() {
  TrainOptions o;
  o.seed = 5;
  o.threads = 1;
  o.projector_epochs = 2;
  o.router_epochs = 3;
  o.batch = 64;
  o.router_validation = 0.1;
  return o;
}

// A held-out score that no router can beat by the required gain: every router falls back to exactly uniform
// routing (the softmax of equal scores), which is what the inference model then computes.
TEST(RouterValidation, FallbackIsExactlyUniformRouting) {
  const fs::path dir = testkit::make_temp_dir("router_val_fallback");
  toy::World world(4);
  world.write_pool(dir / "pool", 300);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o = toy_options();
  o.router_min_gain = 2.0;  // scores are in [0, 1]: uniform always within reach
  RouterValidationReport report;
  o.router_report = &report;
  NamedTensors state = train_binding(pool, tuples, config, o);
  EXPECT_EQ(report.held_out, 120);
  EXPECT_EQ(report.epoch_scores.size(), 3u);
  for (auto& [m, a] : report.alpha) EXPECT_EQ(a, 0.0) << m;
  EXPECT_NEAR(report.final_score, report.uniform_score, 1e-12);
  auto model = load_trained_model(state, config);
  at::manual_seed(8);
  at::Tensor labels = at::arange(40, at::kLong).remainder(8);
  for (const char* m : {"audio", "image", "point", "text"}) {
    auto emb = world.embed(m, labels);
    std::map<std::string, at::Tensor> in;
    for (auto& n : model.required_inputs(m)) in[n] = emb.at(n);
    at::Tensor w = model.routing_weights(m, in);
    EXPECT_LT((w - 1.0 / static_cast<double>(w.size(1))).abs().max().item<double>(), 1e-7) << m;
  }
}

// With validation on, the same seed gives the same bytes, and an interrupted run resumes to the same bytes
// (the best epoch's routers travel in the state file).
TEST(RouterValidation, DeterministicAndResumableWithValidation) {
  const fs::path dir = testkit::make_temp_dir("router_val_det");
  toy::World world(6);
  world.write_pool(dir / "pool", 300);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o = toy_options();
  RouterValidationReport report;
  o.router_report = &report;
  NamedTensors a = train_binding(pool, tuples, config, o);
  EXPECT_EQ(report.held_out, 120);
  EXPECT_GE(report.best_epoch, 1);
  NamedTensors b = train_binding(pool, tuples, config, o);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  TrainOptions r = o;
  r.router_report = nullptr;
  r.state_file = dir / "state.safetensors";
  r.progress = [](const TrainProgress& p) {
    if (p.stage.rfind("router epoch 2", 0) == 0) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(train_binding(pool, tuples, config, r), std::runtime_error);
  r.progress = {};
  r.resume = true;
  NamedTensors c = train_binding(pool, tuples, config, r);
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, c[i].first);
    EXPECT_TRUE(at::equal(a[i].second, c[i].second)) << a[i].first;
  }
}

}  // namespace
}  // namespace omnibind::training
