// `omnibind fuse --out X.pt` writes a torch.save archive (format picked by extension) holding the
// same unified embeddings as the safetensors output.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;

TEST(Fuse, TorchOutputByExtensionMatchesReference) {
  OMNIBIND_REQUIRE_SHARED();
  const auto fx = [](const std::string& n) { return testkit::shared_path("fixtures/omnibind_router_mini/" + n); };
  const auto dir = testkit::make_temp_dir("fuse_pt");
  const auto out = dir + "/unified.pt";
  auto r = testkit::run_cli({"fuse", "--head", fx("large.safetensors"), "--preset", "large", "--in",
                             fx("large_inputs.safetensors"), "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(tensor_io::detect_checkpoint_format(out), tensor_io::CheckpointFormat::TorchZip);
  auto got = tensor_io::load_checkpoint(out);
  auto expected = tensor_io::read_safetensors(fx("large_outputs.safetensors"));
  ASSERT_EQ(got.size(), expected.tensors.size());
  for (auto& m : expected.tensors.names()) {
    const double diff =
        (tensor_io::to_tensor(got.at(m)) - tensor_io::to_tensor(expected.tensors.at(m))).abs().max().item<double>();
    EXPECT_LE(diff, 1e-5) << m;
  }
}
