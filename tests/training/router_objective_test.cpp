// Named router objectives (training/binding_trainer.h set_router_objective): the TrainOptions defaults are the
// "denoise" objective, "paper" is OmniBind's L_align + L_dec, and an unknown name is one InputError.
#include <gtest/gtest.h>

#include "omnibind/common/error.h"
#include "omnibind/training/binding_trainer.h"

namespace omnibind::training {
namespace {

void expect_same_router_options(const TrainOptions& a, const TrainOptions& b) {
  EXPECT_EQ(a.router_align_weight, b.router_align_weight);
  EXPECT_EQ(a.router_noise_weight, b.router_noise_weight);
  EXPECT_EQ(a.router_align_unidentified_only, b.router_align_unidentified_only);
  EXPECT_EQ(a.decoupling, b.decoupling);
  EXPECT_EQ(a.router_text_keeps_decoupling, b.router_text_keeps_decoupling);
  EXPECT_EQ(a.router_decoupling_slack, b.router_decoupling_slack);
  EXPECT_EQ(a.router_validation_metric, b.router_validation_metric);
}

TEST(RouterObjective, DefaultsAreTheDenoiseObjective) {
  TrainOptions named;
  set_router_objective(named, "paper");
  set_router_objective(named, "denoise");
  expect_same_router_options(TrainOptions{}, named);
  EXPECT_GT(named.router_noise_weight, 0);
  EXPECT_EQ(named.router_validation_metric, "noise");
  EXPECT_EQ(TrainOptions{}.router_unvalidated, "uniform");
}

TEST(RouterObjective, PaperIsAlignPlusDecouplingValidatedByRetrieval) {
  TrainOptions o;
  set_router_objective(o, "paper");
  EXPECT_EQ(o.router_noise_weight, 0);
  EXPECT_EQ(o.router_align_weight, 1);
  EXPECT_FALSE(o.router_align_unidentified_only);
  EXPECT_TRUE(o.decoupling);
  EXPECT_FALSE(o.router_text_keeps_decoupling);
  EXPECT_EQ(o.router_validation_metric, "top1");
}

TEST(RouterObjective, UnknownNameIsOneInputError) {
  TrainOptions o;
  try {
    set_router_objective(o, "magic");
    FAIL() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("magic"), std::string::npos) << m;
    EXPECT_NE(m.find("denoise"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  expect_same_router_options(o, TrainOptions{});  // untouched
}

}  // namespace
}  // namespace omnibind::training
