// Mining and binding training on a toy world with known classes: tuples are class-pure, the trained
// checkpoint loads in the inference model and reproduces training's routing, and audio<->3D
// retrieval emerges although no expert covers audio and points together.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

struct Trained {
  fs::path dir;
  toy::World world{3};
  binding::BindingConfig config = binding::parse_binding_config(toy::kConfigJson, "toy");
  NamedTensors state;
};

const Trained& trained() {
  static Trained* t = [] {
    auto* t = new Trained;
    t->dir = testkit::make_temp_dir("train");
    t->world.write_pool(t->dir / "pool", 300);
    EmbeddingPool pool = EmbeddingPool::open(t->dir / "pool");
    TupleSet tuples = mine_tuples(pool, MiningOptions{});
    TrainOptions o;
    o.seed = 5;
    o.threads = 1;
    o.projector_epochs = 6;
    o.router_epochs = 6;
    o.batch = 64;
    t->state = train_binding(pool, tuples, t->config, o);
    return t;
  }();
  return *t;
}

TEST(TupleMining, PlanChainsThroughSharedModalitiesAndTuplesAreClassPure) {
  const fs::path dir = testkit::make_temp_dir("mine");
  toy::World world(4);
  world.write_pool(dir / "pool", 200);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  // audio -> point: no expert covers both; the plan goes audio -> text (AT) -> image (IT) -> point (PI).
  auto plan = mining_plan(pool, "audio");
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].to, "text");
  EXPECT_EQ(plan[0].experts, std::vector<std::string>{"AT"});
  EXPECT_EQ(plan.back().to, "point");
  EXPECT_EQ(plan.back().from, "image");
  nlohmann::json stats;
  TupleSet t = mine_tuples(pool, MiningOptions{}, &stats);
  EXPECT_EQ(t.size(), 800);
  EXPECT_GE(t.index.min().item<int64_t>(), 0);
  for (const auto& [pair, purity] : stats["purity"].items()) EXPECT_GT(purity.get<double>(), 0.6) << pair;  // chance 1/8
  // Round trip, and the aggregated (FreeBind-style) variant: weights are a distribution.
  save_tuples(dir / "t.safetensors", t, stats);
  TupleSet back = load_tuples(dir / "t.safetensors");
  EXPECT_TRUE(at::equal(back.index, t.index));
  MiningOptions agg;
  agg.aggregate = true;
  agg.topk = 4;
  TupleSet a = mine_tuples(pool, agg);
  EXPECT_EQ(a.index.size(2), 4);
  at::Tensor sums = a.weight.sum(2);
  EXPECT_TRUE(at::allclose(sums, at::ones_like(sums), 1e-5, 1e-5));
  // An approximate index is measured against exact search.
  MiningOptions ivf;
  ivf.index = "IVF4,Flat";
  nlohmann::json ivf_stats;
  mine_tuples(pool, ivf, &ivf_stats);
  ASSERT_TRUE(ivf_stats.contains("recall_at_10"));
  for (const auto& [k, r] : ivf_stats["recall_at_10"].items()) EXPECT_GT(r.get<double>(), 0.5) << k;
}

TEST(BindingTrainer, CheckpointLoadsAndAudioToPointRetrievalEmerges) {
  const Trained& t = trained();
  tensor_io::StateDict sd("trained");
  for (const auto& [n, x] : t.state) sd.add(n, tensor_io::from_tensor(x.contiguous()));
  EXPECT_TRUE(sd.contains("projs.0.Head2.mlps.1.running_var"));
  EXPECT_TRUE(sd.contains("T_enc_router.router.6.weight"));
  auto model = binding::OmniBindModel::load(sd, t.config);
  // Paired evaluation items: the same class in audio and point.
  at::manual_seed(99);
  at::Tensor labels = at::arange(200, at::kLong).remainder(8);
  auto audio = t.world.embed("audio", labels), point = t.world.embed("point", labels);
  at::Tensor ua = model.embed("audio", {{"AT", audio["AT"]}});
  at::Tensor up = model.embed("point", {{"PI", point["PI"]}});
  at::Tensor best = at::mm(ua, up.t()).argmax(1);
  const double class_top1 = labels.index_select(0, best).eq(labels).to(at::kDouble).mean().item<double>();
  EXPECT_GT(class_top1, 0.5) << "audio->3D class-level top-1 (chance 0.125)";
}

TEST(BindingTrainer, DeterministicWithASeedAndResumable) {
  const fs::path dir = testkit::make_temp_dir("train_det");
  toy::World world(6);
  world.write_pool(dir / "pool", 120);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o;
  o.seed = 11;
  o.threads = 1;
  o.projector_epochs = 2;
  o.router_epochs = 3;
  o.batch = 32;
  NamedTensors a = train_binding(pool, tuples, config, o);
  NamedTensors b = train_binding(pool, tuples, config, o);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  // Interrupted after the first router epoch (progress callback throws), then resumed: same bytes.
  TrainOptions r = o;
  r.state_file = dir / "state.safetensors";
  r.progress = [](const TrainProgress& p) {
    if (p.stage.rfind("router epoch 2", 0) == 0) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(train_binding(pool, tuples, config, r), std::runtime_error);
  ASSERT_TRUE(fs::exists(r.state_file));
  r.progress = {};
  r.resume = true;
  NamedTensors c = train_binding(pool, tuples, config, r);
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, c[i].second)) << a[i].first;
  // A pool that lacks an expert the config names is refused with the name.
  auto other = config;
  other.experts[0].name = "NOPE";
  other.router_inputs["audio"] = {"NOPE"};
  other.router_inputs["text"] = {"NOPE", "IT"};
  try {
    train_binding(pool, tuples, other, o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'NOPE'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace omnibind::training
