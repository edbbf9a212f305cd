// Zip-format checkpoints built byte by byte: ZIP64 and deflated layouts load; truncation, a
// corrupt central directory, a missing storage entry and oversized views are InputErrors that
// name the file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/tensor_io/zip_archive.h"
#include "testing/test_support.h"
#include "torch_test_files.h"

using namespace omnibind;
using namespace omnibind::tensor_io;
using namespace omnibind::testkit::torchfiles;

namespace {

// {'w': 2x2 float [1, 2, 3, 4], 'wt': its transpose (same storage)} as torch.save lays it out.
std::vector<ZipItem> tiny_checkpoint(const std::string& pickle_override = "") {
  std::string pickle = pickle_override.empty()
                           ? state_dict_pickle({{"w", tensor_call("FloatStorage", "0", 4, 0, {2, 2}, {2, 1})},
                                                {"wt", tensor_call("FloatStorage", "0", 4, 0, {2, 2}, {1, 2})}})
                           : pickle_override;
  return {{"tiny/data.pkl", pickle}, {"tiny/data/0", floats({1, 2, 3, 4})}, {"tiny/version", "3\n"}};
}

void expect_input_error(const std::string& path, const std::string& needle) {
  try {
    load_checkpoint(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << "error must name the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

void expect_tiny(const StateDict& sd) {
  ASSERT_EQ(sd.names(), (std::vector<std::string>{"w", "wt"}));
  at::Tensor w = to_tensor(sd.at("w")), wt = to_tensor(sd.at("wt"));
  EXPECT_TRUE(at::equal(w, at::arange(1, 5, at::kFloat).reshape({2, 2})));
  EXPECT_TRUE(at::equal(wt, w.t()));
  EXPECT_EQ(sd.at("w").data, sd.at("wt").data);  // one storage, shared
}

}  // namespace

TEST(ZipCheckpoint, LoadsStoredDeflatedAndZip64Archives) {
  auto dir = testkit::make_temp_dir("zipck");
  expect_tiny(load_checkpoint(write(dir, "stored.pt", make_zip(tiny_checkpoint()))));
  expect_tiny(load_checkpoint(write(dir, "deflated.pt", make_zip(tiny_checkpoint(), /*deflate=*/true))));
  const auto z64 = write(dir, "zip64.pt", make_zip(tiny_checkpoint(), false, /*zip64=*/true));
  expect_tiny(load_checkpoint(z64));
  ZipArchive zip = ZipArchive::open(z64);
  ASSERT_EQ(zip.entries().size(), 3u);
  EXPECT_EQ(zip.read("tiny/version", true).view(), "3\n");
}

TEST(ZipCheckpoint, TruncatedArchiveIsAnInputError) {
  auto dir = testkit::make_temp_dir("zipck");
  std::string bytes = make_zip(tiny_checkpoint());
  expect_input_error(write(dir, "cut_tail.pt", bytes.substr(0, bytes.size() - 10)), "end-of-central-directory");
  expect_input_error(write(dir, "cut_half.pt", bytes.substr(0, bytes.size() / 2)), "end-of-central-directory");
  expect_input_error(write(dir, "tiny.pt", bytes.substr(0, 12)), "too short");
}

TEST(ZipCheckpoint, CorruptCentralDirectoryIsAnInputError) {
  auto dir = testkit::make_temp_dir("zipck");
  const std::string bytes = make_zip(tiny_checkpoint());
  const size_t eocd = bytes.size() - 22;
  uint32_t cd_offset = 0;
  for (int i = 3; i >= 0; --i) cd_offset = cd_offset << 8 | uint8_t(bytes[eocd + 16 + i]);
  std::string bad_sig = bytes;
  bad_sig[cd_offset] = 'X';
  expect_input_error(write(dir, "bad_sig.pt", bad_sig), "central directory entry 0 is corrupt");
  std::string bad_offset = bytes;
  bad_offset[eocd + 19] = '\x7f';  // directory offset far past the end
  expect_input_error(write(dir, "bad_offset.pt", bad_offset), "outside the file");
  std::string bad_local = bytes;
  bad_local[cd_offset + 42] = '\x05';  // first entry's local header offset points into data
  expect_input_error(write(dir, "bad_local.pt", bad_local), "bad local header offset");
  std::string bad_size = bytes;
  bad_size[cd_offset + 20 + 3] = '\x10', bad_size[cd_offset + 24 + 3] = '\x10';  // sizes of 256 MiB
  expect_input_error(write(dir, "bad_size.pt", bad_size), "runs past");
}

TEST(ZipCheckpoint, CorruptDeflateStreamIsAnInputError) {
  auto dir = testkit::make_temp_dir("zipck");
  std::string bytes = make_zip(tiny_checkpoint(), /*deflate=*/true);
  // The first entry (data.pkl) starts after its 30-byte header and 13-byte name: damage it.
  for (size_t i = 30 + 13; i < 30 + 13 + 12; ++i) bytes[i] = char(~bytes[i]);
  expect_input_error(write(dir, "bad_deflate.pt", bytes), "data.pkl");
}

TEST(ZipCheckpoint, MissingStorageEntryIsAnInputError) {
  auto dir = testkit::make_temp_dir("zipck");
  auto items = tiny_checkpoint(state_dict_pickle({{"w", tensor_call("FloatStorage", "7", 4, 0, {4}, {1})}}));
  expect_input_error(write(dir, "missing.pt", make_zip(items)), "no entry 'tiny/data/7'");
}

TEST(ZipCheckpoint, TensorLargerThanItsStorageIsAnInputError) {
  auto dir = testkit::make_temp_dir("zipck");
  auto past_end = tiny_checkpoint(state_dict_pickle({{"w", tensor_call("FloatStorage", "0", 4, 1, {2, 2}, {2, 1})}}));
  expect_input_error(write(dir, "past_end.pt", make_zip(past_end)), "reaches past its storage");
  auto short_entry = tiny_checkpoint(state_dict_pickle({{"w", tensor_call("FloatStorage", "0", 9, 0, {9}, {1})}}));
  expect_input_error(write(dir, "short_entry.pt", make_zip(short_entry)), "holds 16 bytes");
}

TEST(ZipCheckpoint, ForbiddenGlobalInsideArchiveIsRefused) {
  auto dir = testkit::make_temp_dir("zipck");
  auto evil = tiny_checkpoint("\x80\x02" + global("os", "system") + unicode("touch /tmp/pwned") + "\x85R.");
  expect_input_error(write(dir, "evil.pt", make_zip(evil)), "refusing to unpickle global 'os.system'");
}

TEST(ZipCheckpoint, ArchiveWithoutDataPklIsExplained) {
  auto dir = testkit::make_temp_dir("zipck");
  expect_input_error(write(dir, "plain.zip", make_zip({{"hello.txt", "hi"}})), "data.pkl");
  expect_input_error(write(dir, "script.pt", make_zip({{"m/constants.pkl", "x"}, {"m/code/m.py", "x"}})), "TorchScript");
}

TEST(ZipCheckpoint, SharedSubObjectsCannotBlowUpFlattening) {
  // 40 lists, each holding the next one twice through the memo: 2^40 paths, 120 bytes of pickle.
  std::string p = "\x80\x02]q";
  p += std::string(1, char(0)) + "0";
  for (int i = 1; i <= 40; ++i) p += std::string("(h") + char(i - 1) + "h" + char(i - 1) + "lq" + char(i) + "0";
  p += "}" + unicode("model") + "h" + char(40) + "s.";
  auto dir = testkit::make_temp_dir("zipck");
  expect_input_error(write(dir, "laughs.pt", make_zip(tiny_checkpoint(p))), "too large to flatten");
}

TEST(ZipCheckpoint, AutoSelectUnwrapsExactlyOneWrapperKey) {
  auto dir = testkit::make_temp_dir("zipck");
  const std::string w = tensor_call("FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
  // {'module': OrderedDict(w=...), 'epoch': 5}  (Uni3D's released model.pt layout)
  std::string inner = state_dict_pickle({{"w", w}});
  inner = inner.substr(2, inner.size() - 3);  // drop PROTO and STOP: nest it as a value
  const std::string wrapped = "\x80\x02}(" + unicode("module") + inner + unicode("epoch") + int1(5) + "u.";
  StateDict one = load_checkpoint(write(dir, "module.pt", make_zip(tiny_checkpoint(wrapped))));
  EXPECT_EQ(one.names(), std::vector<std::string>{"w"});
  // Two wrapper keys: ambiguous, so nothing is unwrapped and both stay, prefixed.
  const std::string two = "\x80\x02}(" + unicode("module") + inner + unicode("model") + inner + "u.";
  StateDict both = load_checkpoint(write(dir, "two.pt", make_zip(tiny_checkpoint(two))));
  EXPECT_EQ(both.names(), (std::vector<std::string>{"module.w", "model.w"}));
  CheckpointOptions opt;
  opt.select = "model";
  EXPECT_EQ(load_checkpoint(write(dir, "two_sel.pt", make_zip(tiny_checkpoint(two))), opt).names(),
            std::vector<std::string>{"w"});
}
