// Parity with the reference OmniBind router/projector code (fixture: ../shared/fixtures/omnibind_router_mini).
#include <cstdio>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::binding;

namespace {

std::string fixture(const std::string& name) { return testkit::shared_path("fixtures/omnibind_router_mini/" + name); }

std::map<std::string, at::Tensor> inputs_of(const tensor_io::StateDict& inputs, const std::string& modality) {
  std::map<std::string, at::Tensor> out;
  for (auto& key : inputs.names())
    if (key.rfind(modality + "/", 0) == 0) out[key.substr(modality.size() + 1)] = tensor_io::to_tensor(inputs.at(key));
  return out;
}

void expect_parity(const std::string& preset, const tensor_io::StateDict& weights, double tolerance) {
  auto model = OmniBindModel::load(weights, preset_config(preset));
  auto inputs = tensor_io::read_safetensors(fixture(preset + "_inputs.safetensors")).tensors;
  auto outputs = tensor_io::read_safetensors(fixture(preset + "_outputs.safetensors")).tensors;
  ASSERT_EQ(outputs.size(), 4u);
  for (auto& modality : outputs.names()) {
    at::Tensor expected = tensor_io::to_tensor(outputs.at(modality));
    at::Tensor got = model.embed(modality, inputs_of(inputs, modality));
    ASSERT_EQ(got.sizes(), expected.sizes()) << preset << " " << modality;
    double diff = (got - expected).abs().max().item<double>();
    EXPECT_LE(diff, tolerance) << preset << " " << modality;
    ::testing::Test::RecordProperty(preset + "_" + modality + "_max_abs_diff", std::to_string(diff));
  }
}

}  // namespace

class PresetParity : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetParity, SafetensorsMatchesReferenceWithin1e5) {
  OMNIBIND_REQUIRE_SHARED();
  auto weights = tensor_io::read_safetensors(fixture(GetParam() + ".safetensors")).tensors;
  expect_parity(GetParam(), weights, 1e-5);
}

TEST_P(PresetParity, WidthsAreInferredFromTheCheckpoint) {
  OMNIBIND_REQUIRE_SHARED();
  auto weights = tensor_io::read_safetensors(fixture(GetParam() + ".safetensors")).tensors;
  auto model = OmniBindModel::load(weights, preset_config(GetParam()));
  EXPECT_EQ(model.unified_dim(), 48);
  EXPECT_EQ(model.hidden_dim(), 64);
  EXPECT_EQ(model.heads_per_space(), 7);
  EXPECT_EQ(model.input_dim("IB"), 64);
  EXPECT_EQ(summarize_checkpoint(weights).preset, GetParam());
}

TEST_P(PresetParity, RoutingWeightsAreADistribution) {
  OMNIBIND_REQUIRE_SHARED();
  auto weights = tensor_io::read_safetensors(fixture(GetParam() + ".safetensors")).tensors;
  auto model = OmniBindModel::load(weights, preset_config(GetParam()));
  auto inputs = tensor_io::read_safetensors(fixture(GetParam() + "_inputs.safetensors")).tensors;
  for (auto& m : model.modalities()) {
    at::Tensor w = model.routing_weights(m, inputs_of(inputs, m));
    EXPECT_EQ(w.size(1), static_cast<int64_t>(model.config().slots(m).size()));
    EXPECT_TRUE(at::allclose(w.sum(1), at::ones({w.size(0)}), 1e-5, 1e-6)) << m;
  }
}

TEST_P(PresetParity, Bf16StaysCloseToFp32) {
  OMNIBIND_REQUIRE_SHARED();
  auto weights = tensor_io::read_safetensors(fixture(GetParam() + ".safetensors")).tensors;
  auto fp32 = OmniBindModel::load(weights, preset_config(GetParam()));
  auto bf16 = OmniBindModel::load(weights, preset_config(GetParam()), Precision::BF16);
  auto inputs = tensor_io::read_safetensors(fixture(GetParam() + "_inputs.safetensors")).tensors;
  for (auto& m : fp32.modalities()) {
    auto in = inputs_of(inputs, m);
    double cos = (fp32.embed(m, in) * bf16.embed(m, in)).sum(1).min().item<double>();
    std::printf("%s %s: min cosine bf16 vs fp32 %.6f\n", GetParam().c_str(), m.c_str(), cos);
    EXPECT_GE(cos, 0.9995) << m;  // issue 2's bound
  }
}

INSTANTIATE_TEST_SUITE_P(AllPresets, PresetParity, ::testing::Values("base", "large", "full"));
