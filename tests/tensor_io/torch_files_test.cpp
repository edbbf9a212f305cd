// Real torch.save output (tests/data/tensor_io, made by Debian's python3-torch 1.13, see its
// README): the legacy format, a deflate-compressed zip and a nested {'model': ...} checkpoint.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::tensor_io;

namespace {

std::string data_path(const std::string& name) { return std::string(OMNIBIND_SOURCE_DIR) + "/tests/data/tensor_io/" + name; }

// The state dict gen.py saves, rebuilt with ATen.
std::vector<std::pair<std::string, at::Tensor>> expected_tensors() {
  at::Tensor w = at::arange(12, at::kFloat).reshape({3, 4}) / 4;
  return {{"w", w},
          {"wt", w.t()},
          {"col", w.select(1, 1)},
          {"h", at::arange(5, at::kHalf) - 2},
          {"flags", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
          {"bn.num_batches_tracked", at::scalar_tensor(7, at::kLong)},
          {"d", at::arange(3, at::kDouble) * 0.5}};
}

void expect_expected(const StateDict& sd, const std::string& prefix = "") {
  auto want = expected_tensors();
  for (auto& [name, t] : want) {
    ASSERT_TRUE(sd.contains(prefix + name)) << prefix + name;
    at::Tensor got = to_tensor(sd.at(prefix + name));
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(got, t)) << name;
  }
  // Views keep torch's layout: strides and offsets into the shared storage.
  EXPECT_EQ(sd.at(prefix + "wt").strides, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(sd.at(prefix + "col").storage_offset, 1);
  EXPECT_EQ(sd.at(prefix + "col").strides, (std::vector<int64_t>{4}));
  EXPECT_EQ(sd.at(prefix + "w").data, sd.at(prefix + "wt").data);
}

void expect_error(const std::string& path, const CheckpointOptions& opt, const std::string& needle) {
  try {
    load_checkpoint(path, opt);
    ADD_FAILURE() << "select '" << opt.select << "' accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(TorchFiles, LoadsLegacyFormat) {
  const auto path = data_path("legacy.pt");
  EXPECT_EQ(detect_checkpoint_format(path), CheckpointFormat::TorchLegacy);
  StateDict sd = load_checkpoint(path);
  EXPECT_EQ(sd.size(), expected_tensors().size());
  EXPECT_EQ(sd.names().front(), "w");  // OrderedDict order kept
  expect_expected(sd);
}

TEST(TorchFiles, LoadsDeflatedZip) {
  const auto path = data_path("deflated.pt");
  EXPECT_EQ(detect_checkpoint_format(path), CheckpointFormat::TorchZip);
  expect_expected(load_checkpoint(path));
}

TEST(TorchFiles, AutoSelectUnwrapsModelAndSkipsNonTensors) {
  const auto path = data_path("nested.pt");
  StateDict sd = load_checkpoint(path);  // {'epoch', 'args', 'model', 'optimizer', 'extra'}
  EXPECT_EQ(sd.size(), expected_tensors().size());
  expect_expected(sd);

  CheckpointOptions all;
  all.select = "";
  StateDict everything = load_checkpoint(path, all);
  expect_expected(everything, "model.");
  EXPECT_TRUE(everything.contains("extra.encoder.scale"));
  EXPECT_EQ(everything.size(), expected_tensors().size() + 1);  // epoch/args/optimizer hold no tensors

  CheckpointOptions sub;
  sub.select = "extra.encoder";
  StateDict enc = load_checkpoint(path, sub);
  ASSERT_EQ(enc.names(), std::vector<std::string>{"scale"});
  EXPECT_FLOAT_EQ(to_tensor(enc.at("scale")).item<float>(), 2.5f);

  sub.select = "model";
  EXPECT_EQ(load_checkpoint(path, sub).names(), sd.names());

  PickleRef root = load_torch_object(path);
  EXPECT_EQ(root->dict_get("epoch")->i, 3);
  EXPECT_EQ(root->dict_get("args")->s, "lr=0.1");
}

TEST(TorchFiles, SelectingAMissingKeyListsTheKeys) {
  const auto path = data_path("nested.pt");
  CheckpointOptions opt;
  opt.select = "state_dict";
  expect_error(path, opt, "no entry 'state_dict' to select; available keys: 'epoch', 'args', 'model'");
  opt.select = "model.missing";
  expect_error(path, opt, "no entry 'model.missing'");
  opt.select = "epoch";
  expect_error(path, opt, "is a int, not a dict");
}

TEST(TorchFiles, TruncatedLegacyFileIsAnInputError) {
  // Copy legacy.pt minus its last bytes: the storage data section is cut.
  const auto src = data_path("legacy.pt");
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = testkit::make_temp_dir("torchfiles") + "/legacy_cut.pt";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  expect_error(path, {}, "truncated");
}
