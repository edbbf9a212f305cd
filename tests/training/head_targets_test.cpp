// Issue 16 item 4: which pairs train the projector heads (TrainOptions::uncovered_pairs / uncovered_keep, the pair
// selection for modalities the backbone does not cover) and how long (projector_min_steps).
// docs/reference/binding_training.md "Heads: what limits the bound space".
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"
#include "omnibind/training/world_family.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

// Class-level precision@1 between two sets of rows, both directions averaged (as bench_world_family).
double class_p1(const at::Tensor& a, const at::Tensor& la, const at::Tensor& b, const at::Tensor& lb) {
  auto one = [](const at::Tensor& q, const at::Tensor& lq, const at::Tensor& g, const at::Tensor& lg) {
    return lg.index_select(0, at::mm(unit(q), unit(g).t()).argmax(1)).eq(lq).to(at::kDouble).mean().item<double>();
  };
  return (one(a, la, b, lb) + one(b, lb, a, la)) / 2;
}

// A small member of the world family, written once per process, with its mined tuples.
struct SmallWorld {
  WorldSpec spec;
  fs::path dir;
  EmbeddingPool pool;
  TupleSet tuples;
};

SmallWorld& small_world(int64_t index, double scale) {
  static std::map<std::pair<int64_t, double>, std::unique_ptr<SmallWorld>> cache;
  auto& slot = cache[{index, scale}];
  if (!slot) {
    WorldSpec spec = world_spec(WorldSplit::Tuning, index);
    scale_world_rows(spec, scale);
    const fs::path dir = fs::path(testkit::make_temp_dir("head_targets")) / ("w" + std::to_string(index));
    const WorldFiles files = write_world(spec, dir);
    EmbeddingPool pool = EmbeddingPool::open(files.train);
    TupleSet tuples = mine_tuples(pool, {});
    slot.reset(new SmallWorld{spec, dir, std::move(pool), std::move(tuples)});
  }
  return *slot;
}

// Mean over the modality pairs of the evaluation set of class P@1 with uniform routing (the bound space itself).
double bound_space_uniform(const SmallWorld& w, const TrainOptions& o) {
  const NamedTensors state = train_binding(w.pool, w.tuples, w.spec.config, o);
  const binding::OmniBindModel model = load_trained_model(state, w.spec.config);
  const EmbeddingPool ev = EmbeddingPool::open(w.dir / "eval");
  std::map<std::string, at::Tensor> emb, label;
  for (const auto& m : ev.modalities()) {
    std::map<std::string, at::Tensor> in;
    bool ok = true;
    for (const auto& n : model.required_inputs(m)) {
      if (!ev.has(m, n)) ok = false;
      else in[n] = ev.embeddings(m, n, 0, ev.rows(m));
    }
    if (!ok || in.empty()) continue;
    at::NoGradGuard no_grad;
    emb[m] = unit(model.slot_embeddings(m, in).mean(1));
    label[m] = *ev.column(m, "label");
  }
  double sum = 0;
  int n = 0;
  for (auto i = emb.begin(); i != emb.end(); ++i)
    for (auto j = std::next(i); j != emb.end(); ++j, ++n) sum += class_p1(i->second, label[i->first], j->second, label[j->first]);
  return n ? sum / n : 0;
}

TrainOptions small_options() {
  TrainOptions o;
  o.seed = 1;
  o.threads = 1;
  o.projector_epochs = 4;
  o.router_epochs = 1;
  o.router_validation = 0;
  return o;
}

// Bad values are refused with one line naming the flag, before any training.
TEST(HeadTargets, BadOptionsGiveOneLineInputError) {
  SmallWorld& w = small_world(2, 0.05);
  auto refused = [&](TrainOptions o, const std::string& flag) {
    try {
      train_binding(w.pool, w.tuples, w.spec.config, o);
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(flag), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      return;
    }
    ADD_FAILURE() << flag << " accepted";
  };
  TrainOptions o = small_options();
  o.uncovered_pairs = "some";
  refused(o, "--uncovered-pairs");
  for (double keep : {0.0, -0.5, 1.5, std::nan("")}) {
    o = small_options();
    o.uncovered_keep = keep;
    refused(o, "--uncovered-keep");
  }
  o = small_options();
  o.projector_min_steps = -1;
  refused(o, "--min-steps-proj");
  o = small_options();
  o.uncovered_target = "audio";
  refused(o, "--uncovered-target");
  // head_training_rows checks the same options.
  o = small_options();
  o.uncovered_pairs = "half";
  EXPECT_THROW(head_training_rows(w.pool, w.tuples, w.spec.config, "audio", o), InputError);
}

// `omnibind train` refuses the same values: exit 2, one line naming the flag, nothing written.
TEST(HeadTargets, TrainCliRefusesBadHeadFlags) {
  SmallWorld& w = small_world(2, 0.05);
  const std::string out = (w.dir / "heads.safetensors").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--uncovered-pairs", "some"}, "--uncovered-pairs"},
      {{"--uncovered-keep", "0"}, "--uncovered-keep"},
      {{"--uncovered-keep", "2"}, "--uncovered-keep"},
      {{"--min-steps-proj", "-5"}, "--min-steps-proj"},
  };
  for (const auto& [flag, expect] : cases) {
    std::vector<std::string> args{"train", "--pools", (w.dir / "train").string(), "--config", (w.dir / "config.json").string(),
                                  "--out", out, "--quiet", "--threads", "1"};
    args.insert(args.end(), flag.begin(), flag.end());
    const auto r = testkit::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << expect << ": " << r.err;
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    EXPECT_EQ(err.find('\n'), std::string::npos) << r.err;
    EXPECT_NE(err.find(expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << expect;
  }
}

// The pairs an uncovered modality trains on are exactly what the options say; covered modalities keep every tuple.
TEST(HeadTargets, UncoveredPairsAreSelectedAsSpecified) {
  SmallWorld& w = small_world(2, 0.05);
  const int64_t T = w.tuples.size();
  const binding::ExpertSpec& bb = *w.spec.config.find(w.spec.config.backbone);
  std::string uncovered, covered;
  for (const auto& m : w.pool.modalities()) {
    if (bb.covers(m)) covered = m;
    else uncovered = m;
  }
  ASSERT_FALSE(uncovered.empty()) << "the world's backbone covers every modality";
  ASSERT_FALSE(covered.empty());
  const at::Tensor all = at::arange(T, at::kLong);
  const at::Tensor anchor = w.tuples.anchor;
  const int in = tuple_slot(uncovered);
  for (const std::string target : {"text", "image", "mean"}) {
    if (target != "mean" && !bb.covers(target)) continue;
    SCOPED_TRACE(uncovered + " -> " + target);
    TrainOptions o = small_options();
    o.uncovered_target = target;
    std::vector<int> tslots;
    if (target == "mean") {
      for (const auto& m : tuple_modalities())
        if (bb.covers(m) && w.pool.has(m, bb.name)) tslots.push_back(tuple_slot(m));
    } else {
      tslots.push_back(tuple_slot(target));
    }
    // all (the default): every tuple, for covered and uncovered modalities alike.
    EXPECT_TRUE(at::equal(head_training_rows(w.pool, w.tuples, w.spec.config, uncovered, o), all));
    // none: nothing for the uncovered modality, everything for a covered one.
    o.uncovered_pairs = "none";
    EXPECT_EQ(head_training_rows(w.pool, w.tuples, w.spec.config, uncovered, o).numel(), 0);
    EXPECT_TRUE(at::equal(head_training_rows(w.pool, w.tuples, w.spec.config, covered, o), all));
    // anchored: the tuples anchored by the input or a target member.
    o.uncovered_pairs = "anchored";
    at::Tensor want = anchor.eq(in);
    for (int t : tslots) want = want.logical_or(anchor.eq(t));
    const at::Tensor anchored = head_training_rows(w.pool, w.tuples, w.spec.config, uncovered, o);
    EXPECT_TRUE(at::equal(anchored, want.nonzero().squeeze(1)));
    EXPECT_GT(anchored.numel(), 0);
    EXPECT_LT(anchored.numel(), T);
    // keep 0.5: per anchor modality, ceil(n / 2) tuples, none of them with a lower pair score than a dropped one.
    o.uncovered_pairs = "all";
    o.uncovered_keep = 0.5;
    at::Tensor score = w.tuples.score.select(1, in);
    for (int t : tslots) score = at::minimum(score, w.tuples.score.select(1, t));
    const at::Tensor kept = head_training_rows(w.pool, w.tuples, w.spec.config, uncovered, o);
    EXPECT_TRUE(at::equal(std::get<0>(at::sort(kept)), kept)) << "rows must stay in tuple order";
    at::Tensor is_kept = at::zeros({T}, at::kBool).index_fill_(0, kept, true);
    for (int a = 0; a < 4; ++a) {
      const at::Tensor group = anchor.eq(a);
      const int64_t n = group.sum().item<int64_t>();
      if (n == 0) continue;
      const at::Tensor k = group.logical_and(is_kept), d = group.logical_and(is_kept.logical_not());
      EXPECT_EQ(k.sum().item<int64_t>(), static_cast<int64_t>(std::ceil(0.5 * static_cast<double>(n)))) << "anchor " << a;
      if (d.any().item<bool>())
        EXPECT_GE(score.masked_select(k).min().item<float>(), score.masked_select(d).max().item<float>()) << "anchor " << a;
    }
    EXPECT_TRUE(at::equal(head_training_rows(w.pool, w.tuples, w.spec.config, covered, o), all));
  }
}

// The default (projector_min_steps 60, chosen on the family's tuning worlds) lifts the bound space of a small world
// whose heads were undertrained (tuning world 2 at a tenth of its size: 479 tuples, 4 epochs = 24 steps a head),
// and costs nothing measurable on a larger, noisier one (tuning world 7: its spaces already take >= 36 steps).
TEST(HeadTargets, MinStepsDefaultLiftsSmallPoolsAndCostsNothingElsewhere) {
  for (int64_t world : {2, 7}) {
    SmallWorld& w = small_world(world, 0.1);
    TrainOptions o = small_options();
    ASSERT_EQ(o.projector_min_steps, 60);
    const double with_default = bound_space_uniform(w, o);
    o.projector_min_steps = 0;
    const double without = bound_space_uniform(w, o);
    std::printf("tuning world %lld: bound space (uniform) min steps 60: %.4f, 0: %.4f\n", static_cast<long long>(world), with_default,
                without);
    EXPECT_GE(with_default, without - 0.01) << "world " << world;
    if (world == 2) EXPECT_GT(with_default, without + 0.1) << "the undertrained world must gain";
  }
}

// projector_min_steps gives a small pool more epochs (the progress line counts them) and 0 changes nothing.
TEST(HeadTargets, MinStepsAddsEpochsOnlyWhereStepsAreFew) {
  SmallWorld& w = small_world(2, 0.05);
  TrainOptions o = small_options();
  o.projector_epochs = 2;
  o.projector_min_steps = 0;
  o.router_epochs = 0;
  std::set<std::string> stages;
  o.progress = [&](const TrainProgress& p) { stages.insert(p.stage); };
  const NamedTensors a = train_binding(w.pool, w.tuples, w.spec.config, o);
  bool two = false;
  for (const auto& s : stages) two |= s.find("epoch 2/2") != std::string::npos;
  EXPECT_TRUE(two);
  // A huge minimum: the epochs of every space grow to reach it; a minimum below 2 epochs' steps changes no byte.
  stages.clear();
  o.projector_min_steps = 40;
  train_binding(w.pool, w.tuples, w.spec.config, o);
  bool more = false;
  for (const auto& s : stages) more |= s.find("epoch 3/") != std::string::npos;
  EXPECT_TRUE(more) << "40 steps need more than 2 epochs on " << w.tuples.size() << " tuples";
  o.projector_min_steps = 1;
  const NamedTensors b = train_binding(w.pool, w.tuples, w.spec.config, o);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
}

}  // namespace
}  // namespace omnibind::training
