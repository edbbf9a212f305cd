// `omnibind embed --expert uni3d ... --modality point`: reference embeddings end to end, and every
// kind of bad point-cloud input -> one line on stderr, exit 2, no output file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing/test_support.h"

namespace {
using omnibind::testkit::expect_exit2;
using omnibind::testkit::read_f32;

namespace fs = std::filesystem;
namespace testkit = omnibind::testkit;

std::string fixture(const std::string& rel) { return testkit::shared_path("fixtures/uni3d_mini/" + rel); }

std::vector<std::string> g_mini_args(const std::string& out) {
  return {"embed", "--expert", "uni3d", "--config", fixture("g_mini/config.json"), "--weights",
          fixture("g_mini/weights.pt"), "--modality", "point", "--out", out};
}

// test_cli links only common: a minimal safetensors F32 reader (shape, values) for checking output.
void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

TEST(Uni3dEmbedCli, EmbedsFixtureCloudsLikeTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  std::string dir = testkit::make_temp_dir("uni3d_cli"), out = dir + "/emb.safetensors";
  auto args = g_mini_args(out);
  for (std::string f : {"inputs/train.npy", "inputs/BBQ.ply", "inputs/chair_0890.pcd", "inputs/toilet.safetensors"})
    args.push_back(fixture(f));
  auto r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto [shape, emb] = read_f32(out, "UNI3D");
  ASSERT_EQ(shape, (std::vector<int64_t>{4, 32}));
  const char* keys[] = {"train", "BBQ", "mn10_chair_0890", "toilet"};
  for (int i = 0; i < 4; ++i) {
    auto [wshape, want] = read_f32(fixture("expected_g_mini.safetensors"), std::string(keys[i]) + "/embedding_l2");
    ASSERT_EQ(want.size(), 32u) << keys[i];
    double dot = 0, na = 0, nb = 0;
    for (int j = 0; j < 32; ++j) {
      dot += double(emb[i * 32 + j]) * want[j];
      na += double(emb[i * 32 + j]) * emb[i * 32 + j];
      nb += double(want[j]) * want[j];
    }
    EXPECT_GE(dot / std::sqrt(na * nb), 0.99999) << keys[i];
    EXPECT_NEAR(na, 1.0, 1e-5) << keys[i];
  }
}

TEST(Uni3dEmbedCli, UnknownOrMismatchedSizeIsExit2) {
  OMNIBIND_REQUIRE_SHARED();
  std::string dir = testkit::make_temp_dir("uni3d_cli"), out = dir + "/emb.safetensors";
  std::string cloud = fixture("inputs/BBQ.ply");
  expect_exit2({"embed", "--expert", "uni3d", "--size", "huge", "--weights", fixture("tiny/weights.safetensors"),
                "--modality", "point", "--out", out, cloud},
               out, "unknown Uni3D size");
  // the fixture's tiny has 1 block, the released tiny 12
  expect_exit2({"embed", "--expert", "uni3d", "--size", "tiny", "--weights", fixture("tiny/weights.safetensors"),
                "--modality", "point", "--out", out, cloud},
               out, "transformer blocks");
  expect_exit2({"embed", "--expert", "uni3d", "--config", fixture("g_mini/config.json"), "--weights",
                fixture("g_mini/weights.pt"), "--modality", "image", "--out", out, cloud},
               out, "does not embed");
}

TEST(Uni3dEmbedCli, BadCloudsAreOneLineExit2WithoutOutput) {
  OMNIBIND_REQUIRE_SHARED();
  std::string dir = testkit::make_temp_dir("uni3d_cli"), out = dir + "/emb.safetensors";
  const std::string hdr = "ply\nformat ascii 1.0\nelement vertex ";
  const std::string props = "\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  std::string few;
  for (int i = 0; i < 10; ++i) few += std::to_string(i) + " " + std::to_string(i % 3) + " 1\n";
  struct Bad {
    std::string file, bytes, needle;
  };
  const std::vector<Bad> cases = {
      {"empty.ply", "", "empty"},
      {"nocloud.ply", hdr + "0" + props, "empty"},
      {"few.ply", hdr + "10" + props + few, "fewer than"},
      {"nan.ply", hdr + "2" + props + "1 2 3\nnan 1 1\n", "non-finite"},
      {"inf.ply", hdr + "2" + props + "1 2 3\n1 inf 1\n", "non-finite"},
      {"flat.obj", "v 0 0 0\nv 1 1 1\nv 2 2 2\nf 1 2 3\n", "zero"},
      {"header.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n", "end_header"},
      {"huge.ply", hdr + "4000000000" + props + "1 2 3\n", "declares"},
      {"huge.pcd", "# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 900000000\nDATA binary\n1234", "declares"},
      // Header text quoted back to the user must come out escaped, never as raw bytes.
      {"rawbytes.pcd", std::string("# .PCD v0.7\nFI\x01\x1b[31m\xff\xfeLDS x y z\n"), "\\x01\\x1B[31m\\xFF\\xFE"},
      {"rawtype.pcd", std::string("# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F\x07 F F\nPOINTS 1\nDATA ascii\n1 2 3\n"),
       "\\x07"},
      {"rawdescr.npy",
       std::string("\x93NUMPY\x01\x00\x4A\x00", 10) + "{'descr': '<f\x1b\x9b', 'fortran_order': False, 'shape': (2, 3), }" +
           std::string(13, ' ') + "\n" + std::string(24, '\0'),
       "\\x1B\\x9B"},
  };
  for (const auto& c : cases) {
    std::string path = dir + "/" + c.file;
    write(path, c.bytes);
    auto args = g_mini_args(out);
    args.push_back(fixture("inputs/BBQ.ply"));  // a good cloud first: nothing may be written anyway
    args.push_back(path);
    SCOPED_TRACE(c.file);
    expect_exit2(args, out, c.needle);
    auto r = testkit::run_cli(args);
    for (unsigned char ch : r.err.substr(0, r.err.size() - 1))
      EXPECT_TRUE(ch >= 0x20 && ch != 0x7F) << "unprintable byte " << int(ch) << " in: " << r.err;
  }
}

}  // namespace

// Issue 15: the reference embeds clouds with fewer points than groups (its FPS repeats indices);
// so does `embed`. g_mini has 64 groups of 16.
TEST(Uni3dEmbedCli, CloudWithFewerPointsThanGroupsEmbeds) {
  OMNIBIND_REQUIRE_SHARED();
  std::string dir = testkit::make_temp_dir("uni3d_cli"), out = dir + "/emb.safetensors";
  std::string ply = "ply\nformat ascii 1.0\nelement vertex 40\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  for (int i = 0; i < 40; ++i)
    ply += std::to_string(std::sin(i * 0.7)) + " " + std::to_string(std::cos(i * 0.3)) + " " + std::to_string(i * 0.05) + "\n";
  write(dir + "/small.ply", ply);
  auto args = g_mini_args(out);
  args.push_back(dir + "/small.ply");
  auto r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto [shape, emb] = read_f32(out, "UNI3D");
  ASSERT_EQ(shape, (std::vector<int64_t>{1, 32}));
  double norm = 0;
  for (float v : emb) norm += double(v) * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
}
