// load_checkpoint against the reference fixtures: every tensor of a .pt must equal the tensor of
// the same name in the matching .safetensors (written from the same state dict by Python).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::tensor_io;

namespace {

// Every safetensors tensor is in the .pt with the same dtype/shape/bytes; returns the names the
// .pt has beyond the safetensors file.
std::vector<std::string> expect_same_tensors(const std::string& pt_path, const std::string& st_path) {
  StateDict pt = load_checkpoint(pt_path);
  StateDict st = load_checkpoint(st_path);
  EXPECT_EQ(pt.source(), pt_path);
  for (const auto& name : st.names()) {
    if (!pt.contains(name)) {
      ADD_FAILURE() << pt_path << " lacks " << name;
      continue;
    }
    const RawTensor& a = pt.at(name);
    const RawTensor& b = st.at(name);
    EXPECT_EQ(a.dtype, b.dtype) << name;
    EXPECT_EQ(a.shape, b.shape) << name;
    at::Tensor ta = to_tensor(a), tb = to_tensor(b);
    EXPECT_TRUE(at::equal(ta, tb)) << name;  // bit-exact
  }
  std::vector<std::string> extra;
  for (const auto& name : pt.names())
    if (!st.contains(name)) extra.push_back(name);
  return extra;
}

}  // namespace

TEST(Checkpoint, RouterFixturesMatchSafetensorsAndKeepBatchNormCounters) {
  OMNIBIND_REQUIRE_SHARED();
  for (const char* preset : {"base", "large", "full"}) {
    const std::string dir = testkit::shared_path("fixtures/omnibind_router_mini/");
    auto extra = expect_same_tensors(dir + preset + ".pt", dir + preset + ".safetensors");
    ASSERT_FALSE(extra.empty()) << preset;
    for (auto& name : extra) EXPECT_NE(name.find("num_batches_tracked"), std::string::npos) << name;
    StateDict pt = load_checkpoint(dir + preset + ".pt");
    const RawTensor& nbt = pt.at(extra.front());
    EXPECT_EQ(nbt.dtype, DType::I64);
    EXPECT_TRUE(nbt.shape.empty());  // a scalar buffer
  }
}

TEST(Checkpoint, ImageBindAndUni3DFixturesMatchSafetensors) {
  OMNIBIND_REQUIRE_SHARED();
  for (const char* dir : {"fixtures/imagebind_mini/", "fixtures/uni3d_mini/g_mini/", "fixtures/uni3d_mini/tiny/"}) {
    const std::string d = testkit::shared_path(dir);
    auto extra = expect_same_tensors(d + "weights.pt", d + "weights.safetensors");
    for (auto& name : extra) EXPECT_NE(name.find("num_batches_tracked"), std::string::npos) << dir << name;
  }
}

TEST(Checkpoint, ZipTensorsAreZeroCopyViewsOfTheFile) {
  OMNIBIND_REQUIRE_SHARED();
  StateDict pt = load_checkpoint(testkit::shared_path("fixtures/omnibind_router_mini/base.pt"));
  const RawTensor& a = pt.at(pt.names().front());
  const RawTensor& b = pt.at(pt.names().back());
  EXPECT_EQ(a.owner.get(), b.owner.get());  // both owned by the one mapping
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 64, 0u);  // torch aligns stored entries
}

TEST(Checkpoint, DetectsFormatsFromContent) {
  OMNIBIND_REQUIRE_SHARED();
  EXPECT_EQ(detect_checkpoint_format(testkit::shared_path("fixtures/omnibind_router_mini/base.pt")), CheckpointFormat::TorchZip);
  EXPECT_EQ(detect_checkpoint_format(testkit::shared_path("fixtures/omnibind_router_mini/base.safetensors")),
            CheckpointFormat::Safetensors);
  try {
    detect_checkpoint_format(testkit::shared_path("fixtures/omnibind_router_mini/README.md"));
    FAIL() << "README accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("README.md"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, LowLevelObjectExposesTheOrderedDict) {
  OMNIBIND_REQUIRE_SHARED();
  PickleRef root = load_torch_object(testkit::shared_path("fixtures/uni3d_mini/tiny/weights.pt"));
  ASSERT_EQ(root->kind, PickleValue::Kind::Dict);
  ASSERT_GT(root->dict_size(), 0u);
  EXPECT_EQ(root->dict_key(0)->s, "logit_scale");  // file order kept
  EXPECT_EQ(root->dict_value(0)->kind, PickleValue::Kind::Tensor);
}
