// Metrics on hand-checked cases (every expected number below is worked out in the comments).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/evaluation/metrics.h"

using namespace omnibind;
using namespace omnibind::evaluation;

namespace {
at::Tensor f(std::vector<float> v, int64_t rows) {
  return at::tensor(v, at::kFloat).reshape({rows, -1});
}
at::Tensor ids(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }
}  // namespace

TEST(ClassEmbeddings, AveragesEachClassPromptsThenRenormalises) {
  // class 0: (1,0) and (0,1) -> mean (0.5,0.5) -> (0.7071, 0.7071); class 1: (0,2) alone -> (0,1); class 2: none.
  at::Tensor c = class_embeddings(f({1, 0, 0, 1, 0, 2}, 3), ids({0, 0, 1}), 3);
  ASSERT_EQ(c.sizes(), (at::IntArrayRef{3, 2}));
  EXPECT_NEAR(c[0][0].item<float>(), 0.70710678f, 1e-6);
  EXPECT_NEAR(c[0][1].item<float>(), 0.70710678f, 1e-6);
  EXPECT_NEAR(c[1][1].item<float>(), 1.0f, 1e-6);
  EXPECT_EQ(c[2].abs().sum().item<float>(), 0.0f);
  EXPECT_THROW(class_embeddings(f({1, 0}, 1), ids({3}), 3), InputError);
}

TEST(ZeroShot, TopOneAndTopFiveCountRanksAndSkipUnknownLabels) {
  // 6 classes along the axes of R^6. Query scores (its own row): q0 best on class 0 (label 0: top-1 hit);
  // q1 ranks class 1 third (label 1: top-5 hit only); q2 ranks its class 5 last (miss both); q3 label -1 skipped.
  at::Tensor classes = at::eye(6);
  at::Tensor q = f({0.9f, 0.1f, 0, 0, 0, 0,        //
                    0.5f, 0.3f, 0.4f, 0, 0, 0,     //
                    0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f,  //
                    1, 0, 0, 0, 0, 0},
                   4);
  auto r = zero_shot_accuracy(q, ids({0, 1, 5, -1}), classes);
  EXPECT_EQ(r.queries, 3);
  EXPECT_DOUBLE_EQ(r.top1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.top5, 2.0 / 3);
}

TEST(ZeroShot, TiesCountAgainstTheTruth) {
  // A constant query scores every class equally: never a top-1 hit, and a top-5 hit only with <= 5 classes.
  at::Tensor q = at::ones({2, 3});
  auto r = zero_shot_accuracy(q, ids({0, 2}), at::eye(3));
  EXPECT_DOUBLE_EQ(r.top1, 0.0);
  EXPECT_DOUBLE_EQ(r.top5, 1.0);
  auto r6 = zero_shot_accuracy(at::ones({1, 6}), ids({1}), at::eye(6));
  EXPECT_DOUBLE_EQ(r6.top5, 0.0);  // 5 other classes tie with the truth -> rank 5
}

TEST(MeanAveragePrecision, MatchesHandComputedAveragePrecision) {
  // Class 0 scores (items 0..3): 0.9 0.8 0.7 0.6, positives {0, 2}: AP = (1/1 + 2/3) / 2 = 5/6.
  // Class 1 scores: 0.1 0.4 0.3 0.2, positives {3}: ranking 1,2,3,0 -> item 3 third: AP = 1/3.
  // Class 2 has no positive: not counted. mAP = (5/6 + 1/3) / 2 = 7/12.
  at::Tensor s = f({0.9f, 0.1f, 0.5f, 0.8f, 0.4f, 0.5f, 0.7f, 0.3f, 0.5f, 0.6f, 0.2f, 0.5f}, 4);
  at::Tensor t = ids({1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0}).reshape({4, 3});
  EXPECT_NEAR(mean_average_precision(s, t), 7.0 / 12.0, 1e-12);
  // Ties: all scores equal, one positive among four -> ranked last: AP = 1/4.
  EXPECT_NEAR(mean_average_precision(at::zeros({4, 1}), ids({0, 1, 0, 0}).reshape({4, 1})), 0.25, 1e-12);
  EXPECT_THROW(mean_average_precision(at::zeros({2, 1}), at::zeros({2, 1})), InputError);
}

TEST(Retrieval, RecallAtKWithSeveralTrueMatchesAndBothDirections) {
  // Gallery: 12 unit axes e0..e11 with pair ids 0..11, plus e0 again with pair id 5 (row 12).
  at::Tensor g = at::cat({at::eye(12), at::eye(12).slice(0, 0, 1)}, 0);
  at::Tensor gp = ids({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 5});
  // q0 (pair 0) = e0: ties with row 12 (a false match for it) -> rank 1: miss R@1, hit R@5.
  // q1 (pair 5) = e0: true rows 5 and 12; row 12 ties with row 0 (false) -> rank 1.
  // q2 (pair 3) = descending scores, e3 7th best -> rank 6: hit only R@10.
  // q3 (pair 42) has no match in the gallery: not counted. q4 pair -1: not counted.
  std::vector<float> q2(12, 0.f);
  float v = 1.0f;
  for (int i : {0, 1, 2, 4, 5, 6, 3, 7, 8, 9, 10, 11}) q2[i] = v, v -= 0.05f;
  std::vector<float> rows;
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 12; ++i) rows.push_back(i == 0 ? 1.f : 0.f);
  rows.insert(rows.end(), q2.begin(), q2.end());
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 12; ++i) rows.push_back(i == 1 ? 1.f : 0.f);
  at::Tensor q = f(rows, 5);
  auto r = retrieval_recall(q, ids({0, 5, 3, 42, -1}), g, gp);
  EXPECT_EQ(r.queries, 3);
  EXPECT_DOUBLE_EQ(r.r1, 0.0);
  EXPECT_DOUBLE_EQ(r.r5, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.r10, 1.0);

  // Both directions: a and b identical (pairs 0..3) -> perfect both ways.
  auto both = retrieval_both_ways(at::eye(4), ids({0, 1, 2, 3}), at::eye(4), ids({0, 1, 2, 3}));
  EXPECT_DOUBLE_EQ(both.a_to_b.r1, 1.0);
  EXPECT_DOUBLE_EQ(both.b_to_a.r1, 1.0);
  // Swapped partners in b -> every R@1 is 0 but R@5 is 1 (4 items).
  auto swapped = retrieval_both_ways(at::eye(4), ids({0, 1, 2, 3}), at::eye(4), ids({1, 0, 3, 2}));
  EXPECT_DOUBLE_EQ(swapped.a_to_b.r1, 0.0);
  EXPECT_DOUBLE_EQ(swapped.b_to_a.r5, 1.0);
  EXPECT_THROW(retrieval_recall(at::eye(3), ids({0, 1}), at::eye(3), ids({0, 1, 2})), InputError);
}
