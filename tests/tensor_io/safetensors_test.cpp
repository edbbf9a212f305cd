#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::tensor_io;

namespace {
std::string write_raw(const std::string& dir, const std::string& name, const std::string& bytes) {
  auto path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}
std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}
}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  auto dir = testkit::make_temp_dir("st");
  auto path = dir + "/a.safetensors";
  std::vector<std::pair<std::string, at::Tensor>> ts = {
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({2, 5}).to(at::kHalf)},
      {"bf16", at::randn({7}).to(at::kBFloat16)},
      {"f64", at::randn({2, 2}, at::kDouble)},
      {"i64", at::arange(6, at::kLong).reshape({2, 3})},
      {"i32", at::arange(4, at::kInt)},
      {"u8", at::arange(9, at::kByte)},
      {"bool", at::ones({3}, at::kBool)},
      {"transposed", at::randn({3, 5}).t()},
      {"empty", at::zeros({0, 4})},
  };
  write_tensors(path, ts, {{"format", "pt"}});
  auto f = read_safetensors(path);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (auto& [name, t] : ts) {
    at::Tensor back = to_tensor(f.tensors.at(name));
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(at::equal(back, t.contiguous())) << name;
  }
  EXPECT_EQ(f.tensors.names()[0], "f32");  // order kept
}

TEST(Safetensors, ReadsReferenceFixture) {
  OMNIBIND_REQUIRE_SHARED();
  auto f = read_safetensors(testkit::shared_path("fixtures/omnibind_router_mini/large_outputs.safetensors"));
  auto t = to_tensor(f.tensors.at("audio"));
  EXPECT_EQ(t.sizes(), (at::IntArrayRef{5, 48}));
  EXPECT_NEAR(t.norm(2, 1).mean().item<float>(), 1.0f, 1e-5);
}

TEST(Safetensors, RejectsTruncatedAndCorruptFiles) {
  auto dir = testkit::make_temp_dir("st");
  auto good = dir + "/good.safetensors";
  write_tensors(good, {{"w", at::randn({16, 16})}});
  std::string bytes = read_file_bytes(good);
  auto expect_error = [&](const std::string& name, const std::string& content, const std::string& needle) {
    auto p = write_raw(dir, name, content);
    try {
      read_safetensors(p);
      ADD_FAILURE() << name << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "error must name the file";
    }
  };
  expect_error("truncated.safetensors", bytes.substr(0, bytes.size() - 10), "outside the data section");
  expect_error("tiny.safetensors", "abc", "shorter than");
  expect_error("huge_header.safetensors", with_header(std::string(8, 'x'), "").replace(0, 8, "\xff\xff\xff\xff\xff\xff\x00\x00", 8), "header length");
  expect_error("bad_json.safetensors", with_header("{\"a\": ", ""), "not valid JSON");
  expect_error("bad_dtype.safetensors", with_header(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", "abcd"), "dtype");
  expect_error("bad_size.safetensors", with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"), "needs 8");
  expect_error("neg_shape.safetensors", with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"), "negative");
  expect_error("empty.safetensors", "", "shorter than");
}

TEST(Safetensors, MissingKeyNamesFileAndKey) {
  auto dir = testkit::make_temp_dir("st");
  auto path = dir + "/a.safetensors";
  write_tensors(path, {{"w", at::randn({2})}});
  auto f = read_safetensors(path);
  try {
    f.tensors.at("nope");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}
