// End-to-end tests of `omnibind embed` (the binary, as a user runs it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/test_support.h"

namespace fs = std::filesystem;
using omnibind::testkit::run_cli;

namespace {
std::string fx(const std::string& name) { return omnibind::testkit::shared_path("fixtures/imagebind_mini/" + name); }

std::vector<std::string> mini_args(const std::string& modality, const std::string& out) {
  return {"embed", "--expert", "imagebind", "--weights", fx("weights.pt"), "--config", fx("config.json"),
          "--bpe", fx("bpe_simple_vocab_16e6.txt.gz"), "--modality", modality, "--out", out};
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Reads the safetensors JSON header (8-byte little-endian length + JSON) as text.
std::string header_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  std::string h(n, '\0');
  in.read(h.data(), static_cast<std::streamsize>(n));
  return h;
}

// The command must fail with exit 2, one stderr line mentioning `needle`, and no output file.
void expect_rejected(std::vector<std::string> args, const std::string& out, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}
}  // namespace

TEST(EmbedCli, ImagesFromADirectoryAndAListFile) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("embed");
  auto out = dir + "/img.safetensors";
  auto args = mini_args("image", out);
  args.push_back(fx("inputs"));  // recursed, sorted, images only
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto h = header_of(out);
  EXPECT_NE(h.find("\"IB\""), std::string::npos) << h;
  EXPECT_NE(h.find("[5,32]"), std::string::npos) << h;
  EXPECT_NE(h.find("\"modality\":\"image\""), std::string::npos) << h;
  EXPECT_NE(h.find("bird_image.jpg"), std::string::npos) << h;
  EXPECT_EQ(h.find(".wav"), std::string::npos) << h;

  // A pool written by embed is served by the precomputed expert.
  std::ofstream(dir + "/list.txt") << fx("inputs/car_image.jpg") << "\n";
  auto out2 = dir + "/again.safetensors";
  auto r2 = run_cli({"embed", "--expert", "precomputed", "--weights", out, "--modality", "image", "@" + dir + "/list.txt",
                     "--out", out2});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(header_of(out2).find("[1,32]"), std::string::npos);
}

TEST(EmbedCli, TextsAndAudio) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("embed_t");
  auto out = dir + "/t.safetensors";
  auto args = mini_args("text", out);
  for (auto t : {"A dog.", "A car", ""}) args.insert(args.end(), {"--text", t});
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(header_of(out).find("[3,32]"), std::string::npos);

  auto aout = dir + "/a.safetensors";
  auto aargs = mini_args("audio", aout);
  aargs.push_back(fx("inputs/fsdd_0_george_0.wav"));
  aargs.push_back("--precision");
  aargs.push_back("bf16");
  auto ra = run_cli(aargs);
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_NE(header_of(aout).find("[1,32]"), std::string::npos);
}

TEST(EmbedCli, BadInputsExit2WithOneLineAndNoFile) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("embed_bad");
  auto out = dir + "/never.safetensors";

  auto a = mini_args("image", out);
  a.push_back(dir + "/missing.jpg");
  expect_rejected(a, out, "missing.jpg");

  auto b = mini_args("smell", out);
  b.push_back(fx("inputs/dog_image.jpg"));
  expect_rejected(b, out, "smell");

  auto c = mini_args("text", out);
  c.insert(c.end(), {"--text", "fine", "--text", "bad \xff\xfe bytes"});
  expect_rejected(c, out, "UTF-8");

  // A checkpoint of another model (an OmniBind projector/router head): the first missing
  // ImageBind key is named.
  std::vector<std::string> d = {"embed", "--expert", "imagebind", "--weights",
                                omnibind::testkit::shared_path("fixtures/omnibind_router_mini/base.pt"),
                                "--modality", "image", fx("inputs/dog_image.jpg"), "--out", out};
  expect_rejected(d, out, "modality_preprocessors.vision.cls_token");

  // One corrupt file among good ones: no partial output.
  std::ofstream(dir + "/junk.png") << "not a png";
  auto e = mini_args("image", out);
  e.insert(e.end(), {fx("inputs/dog_image.jpg"), dir + "/junk.png"});
  expect_rejected(e, out, "junk.png");

  auto f = mini_args("image", out);  // no inputs at all
  expect_rejected(f, out, "no inputs");
}
