// Slot noise from disagreement (issue 16 item 3, training/slot_noise.h): the leave-one-out estimator recovers
// each slot's error variance without knowing what the slots aim at, and the mixture variance is least at
// inverse-variance weights.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "omnibind/training/slot_noise.h"

namespace omnibind::training {
namespace {

// B inputs, S slots: h_k = t + e_k with t a random point per input and e_k ~ N(0, s_k / D) per coordinate.
at::Tensor noisy_slots(int64_t B, int64_t D, const std::vector<double>& variances, uint64_t seed) {
  at::manual_seed(seed);
  const at::Tensor t = at::randn({B, 1, D});
  std::vector<at::Tensor> slots;
  for (double v : variances) slots.push_back(t.squeeze(1) + at::randn({B, D}) * std::sqrt(v / static_cast<double>(D)));
  return at::stack(slots, 1);
}

TEST(SlotNoise, RecoversEachSlotsErrorVariance) {
  const std::vector<double> variances{0.05, 0.2, 0.5, 1.0};
  const at::Tensor noise = slot_noise_variance(noisy_slots(4000, 64, variances, 3));
  ASSERT_TRUE(noise.defined());
  ASSERT_EQ(noise.sizes(), (std::vector<int64_t>{4000, 4}));
  const at::Tensor mean = noise.mean(0);
  for (size_t k = 0; k < variances.size(); ++k)
    EXPECT_NEAR(mean[static_cast<int64_t>(k)].item<double>(), variances[k], 0.03 + 0.03 * variances[k]) << "slot " << k;
}

TEST(SlotNoise, DoesNotDependOnWhereTheSlotsAim) {
  at::Tensor slots = noisy_slots(64, 16, {0.1, 0.3, 0.6}, 5);
  const at::Tensor shifted = slots + at::randn({64, 1, 16}) * 10;  // the common point moves; disagreement does not
  EXPECT_TRUE(at::allclose(slot_noise_variance(slots), slot_noise_variance(shifted), 1e-3, 1e-3));
}

TEST(SlotNoise, ThreeSlotsAreTheFewestThatIdentifyIt) {
  EXPECT_FALSE(slot_noise_variance(at::randn({8, 2, 4})).defined());
  EXPECT_FALSE(slot_noise_variance(at::randn({8, 1, 4})).defined());
  // With exactly three: s_1 = (D_12 + D_13 - D_23) / 2.
  const at::Tensor x = at::randn({5, 3, 6});
  const at::Tensor n = slot_noise_variance(x);
  auto d = [&](int i, int j) { return (x.select(1, i) - x.select(1, j)).pow(2).sum(1); };
  EXPECT_TRUE(at::allclose(n.select(1, 0), (d(0, 1) + d(0, 2) - d(1, 2)) / 2, 1e-4, 1e-4));
  EXPECT_TRUE(at::allclose(n.select(1, 2), (d(2, 0) + d(2, 1) - d(0, 1)) / 2, 1e-4, 1e-4));
}

TEST(SlotNoise, MixtureVarianceIsLeastAtInverseVarianceWeights) {
  const at::Tensor noise = at::tensor({0.1f, 0.4f, 0.8f}).unsqueeze(0);
  const at::Tensor inverse = noise.reciprocal() / noise.reciprocal().sum();
  const double best = mixture_noise(inverse, noise).item<double>();
  EXPECT_LT(best, mixture_noise(at::full({1, 3}, 1.0f / 3), noise).item<double>());
  for (int trial = 0; trial < 20; ++trial) {
    const at::Tensor w = at::softmax(at::randn({1, 3}), 1);
    EXPECT_GE(mixture_noise(w, noise).item<double>(), best - 1e-7);
  }
  // And the mixture's actual error matches sum_k w_k^2 s_k.
  const std::vector<double> variances{0.1, 0.4, 0.8};
  const at::Tensor slots = noisy_slots(20000, 32, variances, 9);
  at::manual_seed(9);
  const at::Tensor t = at::randn({20000, 1, 32}).squeeze(1);  // the same t noisy_slots drew first
  const at::Tensor mixed = (slots * inverse.unsqueeze(2)).sum(1);
  EXPECT_NEAR((mixed - t).pow(2).sum(1).mean().item<double>(), best, 0.01);
}

}  // namespace
}  // namespace omnibind::training
