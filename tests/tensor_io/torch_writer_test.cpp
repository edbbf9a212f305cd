// Writing torch.save zip archives: round trips through our reader for every dtype and layout,
// torch's entry layout (64-byte aligned stored entries, version/byteorder records, ZIP64 when
// forced), determinism, tied tensors sharing a storage, bad names refused with nothing written,
// the extension-based format choice, and torch.load(weights_only=True) in the system Python when
// python3-torch is installed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/checkpoint_writer.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/tensor_io/torch_writer.h"
#include "omnibind/tensor_io/zip_archive.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::tensor_io;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A mix of every dtype and awkward layout: scalar, empty, 4-D, transposed view, column view.
std::vector<std::pair<std::string, at::Tensor>> sample_tensors() {
  at::manual_seed(7);
  auto base = at::randn({5, 7});
  return {
      {"layer.weight", at::randn({4, 3})},
      {"layer.bias", at::randn({4}).to(at::kDouble)},
      {"half", at::randn({2, 3}).to(at::kHalf)},
      {"bf16", at::randn({3, 2}).to(at::kBFloat16)},
      {"bn.num_batches_tracked", at::scalar_tensor(static_cast<int64_t>(123456789012), at::kLong)},
      {"i32", at::arange(-5, 5, at::kInt)},
      {"i16", at::arange(-3, 3, at::kShort)},
      {"i8", at::arange(-3, 3, at::kChar)},
      {"u8", at::arange(0, 250, 7, at::kByte)},
      {"mask", at::arange(6).remainder(2).to(at::kBool)},
      {"empty", at::empty({0, 3})},
      {"cube", at::randn({2, 3, 2, 2})},
      {"transposed", base.t()},
      {"column", base.select(1, 2)},
      {"unicode.névé.日本", at::ones({1})},
  };
}

void expect_same(const StateDict& sd, const std::vector<std::pair<std::string, at::Tensor>>& want) {
  ASSERT_EQ(sd.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& [name, t] = want[i];
    EXPECT_EQ(sd.names()[i], name) << "order is kept";
    auto got = to_tensor(sd.at(name));
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(got, t)) << name;
  }
}

}  // namespace

TEST(TorchWriter, RoundTripsEveryDtypeAndLayoutThroughOurReader) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/sd.pt";
  auto tensors = sample_tensors();
  write_torch_checkpoint(path, tensors);
  EXPECT_EQ(detect_checkpoint_format(path), CheckpointFormat::TorchZip);
  expect_same(load_checkpoint(path), tensors);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(TorchWriter, LaysOutEntriesLikeTorchSave) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/layout.pt";
  write_torch_checkpoint(path, sample_tensors());
  auto zip = ZipArchive::open(path);
  std::vector<std::string> names;
  for (auto& e : zip.entries()) {
    names.push_back(e.name);
    EXPECT_EQ(e.method, 0) << e.name << " is stored, not deflated";
    EXPECT_EQ(e.data_offset % 64, 0u) << e.name << " data is 64-byte aligned";
    zip.read(e, /*verify_crc=*/true);  // throws on a wrong CRC
  }
  ASSERT_GE(names.size(), 4u);
  EXPECT_EQ(names.front(), "archive/data.pkl");
  EXPECT_EQ(names.back(), "archive/version");
  EXPECT_EQ(zip.read("archive/version").view(), "3\n");
  EXPECT_EQ(zip.read("archive/byteorder").view(), "little");
  EXPECT_NE(zip.find("archive/data/0"), nullptr);
  // 15 distinct tensors -> 15 storages.
  EXPECT_NE(zip.find("archive/data/14"), nullptr);
  EXPECT_EQ(zip.find("archive/data/15"), nullptr);
}

TEST(TorchWriter, SameInputsGiveSameBytes) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  write_torch_checkpoint(dir + "/a.pt", sample_tensors());
  write_torch_checkpoint(dir + "/b.pt", sample_tensors());
  EXPECT_EQ(slurp(dir + "/a.pt"), slurp(dir + "/b.pt"));
}

TEST(TorchWriter, TiedTensorsShareOneStorage) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/tied.pt";
  auto w = at::randn({3, 4});
  write_torch_checkpoint(path, {{"enc.weight", w}, {"dec.weight", w}, {"other", w.clone()}});
  auto zip = ZipArchive::open(path);
  EXPECT_NE(zip.find("archive/data/1"), nullptr);
  EXPECT_EQ(zip.find("archive/data/2"), nullptr) << "the tied pair is one storage";
  auto sd = load_checkpoint(path);
  EXPECT_EQ(sd.at("enc.weight").data, sd.at("dec.weight").data);
  EXPECT_TRUE(at::equal(to_tensor(sd.at("dec.weight")), w));
  EXPECT_TRUE(at::equal(to_tensor(sd.at("other")), w));
}

TEST(TorchWriter, ForcedZip64AndMoreThanOneSetitemsBatchRoundTrip) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/many.pt";
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (int i = 0; i < 2100; ++i) tensors.emplace_back("t." + std::to_string(i), at::full({2}, float(i)));
  std::vector<std::pair<std::string, RawTensor>> raws;
  for (auto& [n, t] : tensors) raws.emplace_back(n, from_tensor(t));
  write_torch_checkpoint(path, raws, {.force_zip64 = true});
  auto zip = ZipArchive::open(path);
  for (auto& e : zip.entries()) EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
  expect_same(load_checkpoint(path), tensors);
}

TEST(TorchWriter, EmptyStateDictRoundTripsAsNoTensors) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/empty.pt";
  write_torch_checkpoint(path, std::vector<std::pair<std::string, RawTensor>>{});
  auto root = load_torch_object(path);
  EXPECT_EQ(root->kind, PickleValue::Kind::Dict);
  EXPECT_EQ(root->dict_size(), 0u);
}

TEST(TorchWriter, BadNamesAreInputErrorsAndNothingIsWritten) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/bad.pt";
  auto t = at::ones({2});
  EXPECT_THROW(write_torch_checkpoint(path, {{"a", t}, {"a", t}}), InputError);
  EXPECT_THROW(write_torch_checkpoint(path, {{std::string("bad\xff", 4), t}}), InputError);
  EXPECT_THROW(write_torch_checkpoint(path, {{std::string("\xed\xa0\x80", 3), t}}), InputError) << "surrogate";
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "no temporary left behind";
  EXPECT_THROW(write_torch_checkpoint(dir + "/no/such/dir/x.pt", {{"a", t}}), InputError);
}

TEST(TorchWriter, FailedWriteKeepsThePreviousFile) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  const auto path = dir + "/keep.pt";
  write_torch_checkpoint(path, {{"a", at::ones({2})}});
  const auto before = slurp(path);
  EXPECT_THROW(write_torch_checkpoint(path, {{"a", at::ones({2})}, {"a", at::ones({2})}}), InputError);
  EXPECT_EQ(slurp(path), before);
}

TEST(CheckpointWriter, PicksTheFormatFromTheExtension) {
  const auto dir = testkit::make_temp_dir("torch_writer");
  std::vector<std::pair<std::string, at::Tensor>> tensors = {{"w", at::randn({2, 2})}};
  EXPECT_TRUE(is_torch_checkpoint_path("a/b.PTH"));
  EXPECT_TRUE(is_torch_checkpoint_path("x.pt"));
  EXPECT_FALSE(is_torch_checkpoint_path("x.safetensors"));
  EXPECT_FALSE(is_torch_checkpoint_path("dir.pt/x"));
  write_checkpoint(dir + "/w.pt", tensors, {{"k", "v"}});
  write_checkpoint(dir + "/w.PTH", tensors);
  write_checkpoint(dir + "/w.safetensors", tensors, {{"k", "v"}});
  EXPECT_EQ(detect_checkpoint_format(dir + "/w.pt"), CheckpointFormat::TorchZip);
  EXPECT_EQ(detect_checkpoint_format(dir + "/w.PTH"), CheckpointFormat::TorchZip);
  EXPECT_EQ(detect_checkpoint_format(dir + "/w.safetensors"), CheckpointFormat::Safetensors);
  for (auto* f : {"/w.pt", "/w.PTH", "/w.safetensors"}) expect_same(load_checkpoint(dir + f), tensors);
}

// torch.load in the system Python (Debian python3-torch), when it is installed.
TEST(TorchWriter, LoadsInPyTorchWithWeightsOnly) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "SKIPPED: /usr/bin/python3 cannot import torch (apt-get install python3-torch to run this check)";
  const auto dir = testkit::make_temp_dir("torch_writer");
  auto tensors = sample_tensors();
  write_torch_checkpoint(dir + "/sd.pt", tensors);
  std::vector<std::pair<std::string, RawTensor>> raws;
  for (auto& [n, t] : tensors) raws.emplace_back(n, from_tensor(t));
  write_torch_checkpoint(dir + "/sd64.pt", raws, {.force_zip64 = true});
  // Python re-saves what it loaded with torch.save; our reader then checks every value.
  const std::string script = dir + "/check.py";
  std::ofstream(script) << "import sys, zipfile, torch, collections\n"
                           "for name in ('sd', 'sd64'):\n"
                           "    p = sys.argv[1] + '/' + name + '.pt'\n"
                           "    assert zipfile.ZipFile(p).testzip() is None, 'CRC'\n"
                           "    sd = torch.load(p, map_location='cpu', weights_only=True)\n"
                           "    assert type(sd) is collections.OrderedDict, type(sd)\n"
                           "    assert sd['transposed'].is_contiguous()\n"
                           "    assert sd['bn.num_batches_tracked'].item() == 123456789012\n"
                           "    assert sd['bf16'].dtype == torch.bfloat16 and sd['mask'].dtype == torch.bool\n"
                           "    torch.save(sd, sys.argv[1] + '/' + name + '_resaved.pt')\n"
                           "print('ok')\n";
  const std::string cmd = "/usr/bin/python3 " + script + " " + dir + " > " + dir + "/py.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir + "/py.log");
  expect_same(load_checkpoint(dir + "/sd_resaved.pt"), tensors);
  expect_same(load_checkpoint(dir + "/sd64_resaved.pt"), tensors);
}
