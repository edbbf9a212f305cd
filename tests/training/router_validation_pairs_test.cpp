// Router validation on indirectly linked pairs (issue 16 item 3, training/router_validation.h): which member
// pairs of a mined tuple a direct hop linked, and that the held-out score counts only the others.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "omnibind/training/router_validation.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

bool linked(const DirectHops& direct, int64_t anchor, const std::string& a, const std::string& b) {
  const int64_t x = tuple_slot(a), y = tuple_slot(b);
  const auto& pairs = direct.at(anchor);
  return std::find(pairs.begin(), pairs.end(), std::make_pair(std::min(x, y), std::max(x, y))) != pairs.end();
}

// The toy world: AT (audio, text), IT (image, text), PI (point, image); nothing covers audio + point, so an audio
// anchor reaches the point through a chain and the pair (audio, point) is never a direct hop.
TEST(RouterValidationPairs, DirectHopsFollowTheMiningPlan) {
  const fs::path dir = testkit::make_temp_dir("rv_pairs_plan");
  toy::World world(4);
  world.write_pool(dir / "pool", 200);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  DirectHops direct = direct_hops(pool, tuples);
  ASSERT_EQ(direct.size(), 4u);  // every modality anchors tuples
  for (const auto& [anchor, pairs] : direct) {
    const std::string a = tuple_modalities().at(static_cast<size_t>(anchor));
    const auto plan = mining_plan(pool, a);
    EXPECT_EQ(pairs.size(), plan.size()) << a;
    for (const auto& hop : plan) EXPECT_TRUE(linked(direct, anchor, hop.from, hop.to)) << a << ": " << hop.from << "->" << hop.to;
    EXPECT_FALSE(linked(direct, anchor, "audio", "point")) << a;
  }
  // An audio anchor's text comes from AT directly; its image and point members only through other members.
  EXPECT_TRUE(linked(direct, tuple_slot("audio"), "audio", "text"));
}

TEST(RouterValidationPairs, IndirectRowsExcludeDirectlyLinkedPairs) {
  const fs::path dir = testkit::make_temp_dir("rv_pairs_rows");
  toy::World world(4);
  world.write_pool(dir / "pool", 200);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  DirectHops direct = direct_hops(pool, tuples);
  const at::Tensor rows = at::arange(tuples.size(), at::kLong);
  const std::vector<std::string> mods{"text", "audio", "point", "image"};
  PairRows pr = indirect_pair_rows(tuples, rows, mods, direct, 1);
  ASSERT_TRUE(pr.count({"audio", "point"}));  // never a direct hop: every tuple counts
  EXPECT_EQ(pr.at({"audio", "point"}).sum().item<int64_t>(), tuples.size());
  for (const auto& [pair, keep] : pr) {
    EXPECT_LT(pair.first, pair.second);
    for (int64_t t = 0; t < tuples.size(); ++t) {
      const int64_t anchor = tuples.anchor[t].item<int64_t>();
      EXPECT_EQ(keep[t].item<bool>(), !linked(direct, anchor, pair.first, pair.second)) << pair.first << "-" << pair.second << " row " << t;
    }
  }
  // A pair with fewer indirect tuples than min_rows is left out rather than scored on a handful.
  PairRows strict = indirect_pair_rows(tuples, rows, mods, direct, tuples.size() + 1);
  EXPECT_TRUE(strict.empty());
}

// Rows a pair does not count for cannot move its score: shuffle exactly those rows and the score stays 1.
TEST(RouterValidationPairs, ScoreIgnoresRowsOutsideThePairMask) {
  at::manual_seed(11);
  at::Tensor x = at::randn({512, 16});
  x = x / x.norm(2, 1, true);
  at::Tensor keep = at::arange(512, at::kLong).remainder(3).ne(0);
  at::Tensor y = x.clone();
  at::Tensor dropped = keep.logical_not().nonzero().squeeze(1);
  y.index_copy_(0, dropped, x.index_select(0, dropped.flip(0)));
  at::Tensor present = at::ones({512}, at::kBool);
  std::map<std::string, at::Tensor> unified{{"audio", x}, {"text", y}}, pres{{"audio", present}, {"text", present}};
  EXPECT_LT(pseudo_retrieval_score(unified, pres), 0.9);
  PairRows pr{{{"audio", "text"}, keep}};
  EXPECT_DOUBLE_EQ(pseudo_retrieval_score(unified, pres, 256, &pr), 1.0);
  PairRows none;  // no pair counts: nothing is scored
  none[{"image", "text"}] = keep;
  EXPECT_DOUBLE_EQ(pseudo_retrieval_score(unified, pres, 256, &none), 0.0);
}

// The paired standard error only counts queries whose outcome differs between the two routings: identical
// outcomes give 0 whatever the score, and it shrinks as 1/sqrt(n) with the same share of changed outcomes.
TEST(RouterValidationPairs, PairedDifferenceErrorCountsOnlyChangedOutcomes) {
  at::Tensor a = at::arange(400, at::kLong).remainder(4).eq(0).to(at::kDouble);  // score 0.25
  EXPECT_DOUBLE_EQ(outcomes_difference_se({a}, {a.clone()}), 0.0);
  at::Tensor b = a.clone();
  b.narrow(0, 1, 20).fill_(1.0);  // 15 of the first 20 flip 0 -> 1 (every fourth was a hit already)
  const double se = outcomes_difference_se({b}, {a});
  const at::Tensor d = b - a;
  EXPECT_NEAR(se, std::sqrt(d.var().item<double>() / 400.0), 1e-12);
  EXPECT_GT(outcomes_score({b}) - outcomes_score({a}), 2 * se);  // 15 more hits of 400 is well beyond the noise
  at::Tensor a4 = at::cat({a, a, a, a}), b4 = at::cat({b, b, b, b});
  EXPECT_NEAR(outcomes_difference_se({b4}, {a4}), se / 2, se * 0.01);
  // Two pairs: the mean over pairs of the pairs' means; the error of that mean.
  EXPECT_NEAR(outcomes_score({a, b}), (0.25 + outcomes_score({b})) / 2, 1e-12);
  EXPECT_NEAR(outcomes_difference_se({b, b}, {a, a}), se / std::sqrt(2.0), 1e-12);
}

}  // namespace
}  // namespace omnibind::training
