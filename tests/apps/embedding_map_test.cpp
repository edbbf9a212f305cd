// PCA maps: the leading component carries the largest spread, signs are fixed, degenerate inputs
// give zeros instead of noise, bad input is one InputError.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "omnibind/apps/report/embedding_map.h"
#include "omnibind/common/error.h"

namespace omnibind::apps {
namespace {

TEST(EmbeddingMap, LeadingComponentSeparatesTheWidestSpread) {
  at::manual_seed(3);
  // Two clusters 10 apart along (1,1,0,0)/sqrt2, small noise, a smaller spread along axis 3.
  at::Tensor x = 0.05 * at::randn({40, 4});
  const at::Tensor dir = at::tensor({1.0f, 1.0f, 0.0f, 0.0f}) / std::sqrt(2.0f);
  std::vector<int> labels(40);
  for (int i = 0; i < 40; ++i) {
    labels[i] = i % 2;
    x[i] += (i % 2 ? 5.0f : -5.0f) * dir;
    x[i][3] += (i % 4 < 2 ? 1.0f : -1.0f);
  }
  const auto points = pca_map(x, labels);
  ASSERT_EQ(points.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(points[i].label, labels[i]);
    EXPECT_NEAR(std::abs(points[i].x), 5.0, 0.3) << i;  // first axis = cluster direction
    EXPECT_NEAR(std::abs(points[i].y), 1.0, 0.3) << i;  // second axis = the +-1 spread
    EXPECT_EQ(points[i].x > 0, i % 2 == 1);  // sign convention: the direction's coefficients are positive
  }
  // Same input, same coordinates; negated data has the same covariance, hence the same (sign-fixed)
  // axes and exactly negated coordinates.
  const auto again = pca_map(x, labels);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(points[i].x, again[i].x);
  const auto flipped = pca_map(-x, labels);
  for (int i = 0; i < 40; ++i) {
    EXPECT_NEAR(flipped[i].x, -points[i].x, 1e-9);
    EXPECT_NEAR(flipped[i].y, -points[i].y, 1e-9);
  }
}

TEST(EmbeddingMap, DegenerateInputsAndErrors) {
  const auto one = pca_map(at::ones({1, 3}), {0});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].x, 0.0);
  EXPECT_EQ(one[0].y, 0.0);
  const auto line = pca_map(at::tensor({0.0f, 1.0f, 2.0f}).reshape({3, 1}), {0, 1, 2});
  EXPECT_NEAR(std::abs(line[0].x - line[2].x), 2.0, 1e-9);
  EXPECT_EQ(line[1].y, 0.0);
  EXPECT_THROW(pca_map(at::ones({3}), {0, 0, 0}), InputError);
  EXPECT_THROW(pca_map(at::ones({3, 2}), {0, 0}), InputError);
  at::Tensor bad = at::ones({2, 2});
  bad[1][1] = NAN;
  EXPECT_THROW(pca_map(bad, {0, 0}), InputError);
}

}  // namespace
}  // namespace omnibind::apps
