// EVA-CLIP-18B's vision tower streamed block by block from a mapped checkpoint
// (tensor_io/block_stream.h, experts/eva18b_stream/streamed_vision.h) on the eva_clip_18b_mini
// fixture: the streamed features are bit-identical to a resident run at fp32 (every read-ahead),
// match the reference features, pages are really released (mincore), a truncated shard and a too
// small memory budget are one-line InputErrors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/eva18b_stream/streamed_vision.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/block_stream.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts::eva18b_stream;
using omnibind::experts::WeightSource;
namespace eva_clip = omnibind::experts::eva_clip;
namespace fs = std::filesystem;

namespace {

std::string fx(const std::string& rel) { return testkit::shared_path("fixtures/eva_clip_18b_mini/" + rel); }

eva_clip::EvaClipConfig mini() { return eva_clip::load_config(fx("config.json")); }

// StreamedVision over the mini checkpoint.
StreamedVision streamed(const tensor_io::StateDict& dict, at::ScalarType compute, tensor_io::BlockStreamOptions o = {}) {
  const auto c = mini();
  return StreamedVision(dict, c.vision, c.embed_dim, compute, o);
}

at::Tensor pixels() {
  auto f = tensor_io::read_safetensors(fx("expected_vision.safetensors"));
  std::vector<at::Tensor> items;
  for (const auto& name : f.tensors.names())
    if (name.size() > 13 && name.substr(name.size() - 13) == "/pixel_values")
      items.push_back(tensor_io::to_tensor(f.tensors.at(name)).clone());
  return at::stack(items);
}

// All blocks loaded up front (EvaVisionTower::forward of branch eva18b): the resident execution.
at::Tensor resident_features(const tensor_io::StateDict& dict, const at::Tensor& px, at::ScalarType compute) {
  const auto c = mini();
  return eva_clip::EvaVisionTower::load(WeightSource(dict, compute, "EVA-CLIP-18B"), c.vision, c.embed_dim).forward(px);
}

// A private copy of the fixture's weights (other processes may map the shared file, which would
// keep its pages cached), flushed so its pages are clean and can be dropped.
std::string private_copy(const std::string& tag) {
  const std::string dir = testkit::make_temp_dir(tag);
  const std::string path = dir + "/weights.safetensors";
  fs::copy_file(fx("weights.safetensors"), path);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return path;
}

// Resident pages (page cache) among the whole pages of [p, p + n).
size_t resident_pages(const void* p, size_t n) {
  const uintptr_t ps = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t s = (reinterpret_cast<uintptr_t>(p) + ps - 1) & ~(ps - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) & ~(ps - 1);
  if (e <= s) return 0;
  std::vector<unsigned char> v((e - s) / ps);
  if (::mincore(reinterpret_cast<void*>(s), e - s, v.data()) != 0) return SIZE_MAX;
  size_t k = 0;
  for (auto b : v) k += b & 1;
  return k;
}

}  // namespace

TEST(Eva18bStream, StreamedEqualsResidentBitIdenticallyAtFp32) {
  OMNIBIND_REQUIRE_SHARED();
  const auto dict = tensor_io::load_checkpoint(fx("weights.safetensors"));
  const at::Tensor px = pixels();
  ASSERT_EQ(px.size(0), 8);
  const at::Tensor resident = resident_features(dict, px, at::kFloat);
  for (int64_t ra : {0, 1, 2, 5}) {
    StreamedVision sv = streamed(dict, at::kFloat, {.read_ahead = ra});
    StreamedVisionStats st;
    const at::Tensor streamed = sv.forward(px, &st);
    EXPECT_TRUE(at::equal(streamed, resident)) << "read_ahead " << ra;
    EXPECT_EQ(st.blocks_run, 2);
    // A second batch through the same stream reads the blocks again and gives the same numbers.
    EXPECT_TRUE(at::equal(sv.forward(px), resident)) << "second pass, read_ahead " << ra;
    const auto s = sv.stream().stats();
    EXPECT_EQ(s.blocks_fetched, 4u);
    EXPECT_EQ(s.resident_bytes, 0u);  // every block tensor is file-backed
    EXPECT_GT(s.streamed_bytes, 0u);
    EXPECT_EQ(s.fetched_bytes, 2 * s.streamed_bytes);
    EXPECT_EQ(s.released_bytes, 2 * s.streamed_bytes);
  }
  // One image alone: streamed = resident bit-identically, and the batch did not mix images (a
  // GEMM over another number of rows may round differently, hence a tolerance against the batch).
  StreamedVision sv = streamed(dict, at::kFloat);
  const at::Tensor one = px.narrow(0, 3, 1);
  const at::Tensor alone = sv.forward(one);
  EXPECT_TRUE(at::equal(alone, resident_features(dict, one, at::kFloat)));
  EXPECT_LE((alone - resident.narrow(0, 3, 1)).abs().max().item<double>(), 1e-5);
}

TEST(Eva18bStream, StreamedMatchesTheReferenceFeatures) {
  OMNIBIND_REQUIRE_SHARED();
  const auto dict = tensor_io::load_checkpoint(fx("weights.safetensors"));
  StreamedVision sv = streamed(dict, at::kFloat);
  const at::Tensor got = sv.forward(pixels()).to(at::kDouble);
  auto ex = tensor_io::read_safetensors(fx("expected_model.safetensors"));
  const at::Tensor want = tensor_io::to_tensor(ex.tensors.at("image/features")).to(at::kDouble);
  ASSERT_EQ(got.sizes(), want.sizes());
  const double max_abs = (got - want).abs().max().item<double>();
  const at::Tensor cos = (got * want).sum(-1) / (got.norm(2, {-1}) * want.norm(2, {-1}));
  EXPECT_LE(max_abs, 1e-4);
  EXPECT_GE(cos.min().item<double>(), 0.99999);
}

TEST(Eva18bStream, Bf16StreamMatchesBf16Resident) {
  OMNIBIND_REQUIRE_SHARED();
  const auto dict = tensor_io::load_checkpoint(fx("weights.safetensors"));
  const at::Tensor px = pixels().narrow(0, 0, 2);
  StreamedVision sv = streamed(dict, at::kBFloat16);
  EXPECT_TRUE(at::equal(sv.forward(px), resident_features(dict, px, at::kBFloat16)));
}

TEST(Eva18bStream, ReleasedPagesLeaveThePageCache) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string path = private_copy("eva18b_stream_pages");
  const auto dict = tensor_io::load_checkpoint(path);
  auto blocks = tensor_io::blocks_by_prefix(dict, "visual.blocks.", 2);
  // The largest tensor of block 0 (fc1, 80 KB at mini widths): its whole pages are checked.
  const tensor_io::RawTensor fc1 = blocks[0].tensors.at("visual.blocks.0.mlp.fc1.weight");
  const size_t fc1_bytes = static_cast<size_t>(fc1.numel()) * 4;
  tensor_io::BlockStream s(std::move(blocks), {.read_ahead = 0});
  s.wait(0);
  const size_t pages = resident_pages(fc1.data, fc1_bytes);
  ASSERT_GT(pages, 10u);
  EXPECT_EQ(resident_pages(fc1.data, fc1_bytes), pages);
  s.release(0);
  EXPECT_EQ(resident_pages(fc1.data, fc1_bytes), 0u);
  EXPECT_EQ(s.stats().released_bytes, s.block_bytes(0));
  // Streaming it again brings the pages back.
  s.wait(0);
  EXPECT_EQ(resident_pages(fc1.data, fc1_bytes), pages);
  s.release(0);
}

TEST(Eva18bStream, TruncatedShardIsAnInputErrorNamingIt) {
  OMNIBIND_REQUIRE_SHARED();
  // Cut short before opening: the loader names the file.
  {
    const std::string path = private_copy("eva18b_stream_trunc0");
    fs::resize_file(path, fs::file_size(path) / 2);
    const std::string msg = testkit::input_error_of([&] { tensor_io::load_checkpoint(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // Cut short while mapped (rewritten under a running stream): the block that needs the missing
  // bytes is an InputError naming the file, not a SIGBUS.
  {
    const std::string path = private_copy("eva18b_stream_trunc1");
    const auto dict = tensor_io::load_checkpoint(path);
    const at::Tensor px = pixels().narrow(0, 0, 1);
    StreamedVision sv = streamed(dict, at::kFloat, {.read_ahead = 0});
    const std::string before = testkit::input_error_of([&] { sv.forward(px); });
    EXPECT_EQ(before, "");
    // File offset of block 1's first byte: 8 + header length + the smallest data_offsets begin.
    std::ifstream in(path, std::ios::binary);
    unsigned char len[8];
    in.read(reinterpret_cast<char*>(len), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
    std::string header(n, ' ');
    in.read(header.data(), static_cast<std::streamsize>(n));
    const auto j = nlohmann::json::parse(header);
    uint64_t begin = UINT64_MAX;
    for (const auto& [name, v] : j.items())
      if (name.rfind("visual.blocks.1.", 0) == 0) begin = std::min(begin, v.at("data_offsets")[0].get<uint64_t>());
    ASSERT_NE(begin, UINT64_MAX);
    const uintmax_t cut = 8 + n + begin + 64;  // block 0 stays whole, block 1 is cut short
    fs::resize_file(path, cut);
    const std::string msg = testkit::input_error_of([&] { sv.forward(px); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Eva18bStream, MemoryBudgetTooSmallForTheReadAheadIsAnInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const auto dict = tensor_io::load_checkpoint(fx("weights.safetensors"));
  auto blocks = tensor_io::blocks_by_prefix(dict, "visual.blocks.", 2);
  uint64_t largest = 0;
  {
    tensor_io::BlockStream probe(blocks, {.read_ahead = 0});
    largest = probe.stats().largest_block_bytes;
  }
  ASSERT_GT(largest, 0u);
  // Room for one block but not for one more in flight.
  const std::string msg = testkit::input_error_of(
      [&] { tensor_io::BlockStream s(blocks, {.read_ahead = 1, .memory_budget = largest + largest / 2}); });
  EXPECT_NE(msg.find("lower the read-ahead"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(testkit::input_error_of(
                [&] { tensor_io::BlockStream s(blocks, {.read_ahead = 0, .memory_budget = largest + largest / 2}); }),
            "");
  EXPECT_NE(testkit::input_error_of([&] { tensor_io::BlockStream s(blocks, {.read_ahead = 0, .memory_budget = 16}); }),
            "");
  // A checkpoint of another model: no blocks under the prefix.
  EXPECT_NE(testkit::input_error_of([&] { tensor_io::blocks_by_prefix(dict, "vision_model.encoder.layers.", 2); }), "");
}
