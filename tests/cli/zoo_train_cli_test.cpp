// `omnibind zoo train` end to end on tiny generated media (3 classes x 4 items of WAV + PNG + text,
// 2 epochs): the expert file loads in `omnibind embed --expert zoo`, training is byte-reproducible with
// a seed and 1 thread, and bad input is one line, exit 2, no file written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/media/media_encode.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using omnibind::testkit::run_cli;

namespace {

// Listing with 12 items: class c has a tone of its own pitch, a bar at its own row, its word.
std::string make_listing(const std::string& dir) {
  const std::vector<std::string> words{"red", "green", "blue"};
  std::ofstream out(dir + "/pairs.jsonl");
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 4; ++k) {
      omnibind::media::Audio a;
      a.sample_rate = 16000;
      a.channels.assign(1, std::vector<float>(8000));
      for (size_t i = 0; i < a.channels[0].size(); ++i)
        a.channels[0][i] = 0.4f * std::sin(static_cast<float>(i) * (0.05f + 0.08f * c) * (1.0f + 0.02f * k));
      const std::string stem = std::to_string(c) + "_" + std::to_string(k);
      omnibind::media::write_wav(dir + "/" + stem + ".wav", a);
      omnibind::media::Image im;
      im.width = im.height = 28;
      im.rgb.assign(28 * 28 * 3, 0);
      for (int y = 8 * c; y < 8 * c + 6; ++y)
        for (int x = 2 + k; x < 26; ++x)
          for (int ch = 0; ch < 3; ++ch) im.rgb[(y * 28 + x) * 3 + ch] = 255;
      omnibind::media::write_png(dir + "/img/" + stem + ".png", im);
      out << "{\"audio\": \"" << stem << ".wav\", \"image\": \"img/" << stem << ".png\", \"text\": \"a "
          << words[c] << " thing\", \"group\": " << c << "}\n";
    }
  return dir + "/pairs.jsonl";
}

std::vector<std::string> train_args(const std::string& pairs, const std::string& out) {
  return {"zoo", "train", "--pairs", pairs, "--modalities", "audio,image,text", "--key", "AIT", "--out", out,
          "--dim", "16", "--epochs", "2", "--batch", "6", "--seed", "3", "--threads", "1"};
}

}  // namespace

TEST(ZooTrainCli, TrainsAnExpertThatEmbedLoadsReproducibly) {
  const std::string dir = omnibind::testkit::make_temp_dir("zoo_cli");
  fs::create_directories(dir + "/img");
  const std::string pairs = make_listing(dir);
  auto r = run_cli(train_args(pairs, dir + "/AIT.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 2/2"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("wrote"), std::string::npos);
  auto again = run_cli(train_args(pairs, dir + "/AIT2.safetensors"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(omnibind::read_file_bytes(dir + "/AIT.safetensors"), omnibind::read_file_bytes(dir + "/AIT2.safetensors"));

  auto e = run_cli({"embed", "--expert", "zoo", "--weights", dir + "/AIT.safetensors", "--modality", "audio",
                    dir + "/0_0.wav", dir + "/2_1.wav", "--out", dir + "/a.safetensors"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto t = run_cli({"embed", "--expert", "zoo", "--weights", dir + "/AIT.safetensors", "--modality", "text", "--text",
                    "a red thing", "--out", dir + "/t.safetensors"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_TRUE(fs::exists(dir + "/a.safetensors"));
  // An expert without an image tower refuses images.
  auto at = run_cli({"zoo", "train", "--pairs", pairs, "--modalities", "audio,text", "--key", "AT", "--out",
                     dir + "/AT.safetensors"});
  EXPECT_EQ(at.exit_code, 2);  // the listing has images, which AT does not take
  EXPECT_NE(at.err.find("pairs.jsonl:1: modality \"image\" is not in --modalities"), std::string::npos) << at.err;
}

// Bad input: one line on stderr, exit 2, no output file. (Every listing error is covered at unit level
// in tests/training/zoo_pairs_file_test.cpp; here a few of each kind go through the CLI.)
namespace {

struct BadCase {
  std::vector<std::string> args;
  std::string expect;
};

void expect_refused(const std::vector<BadCase>& cases, const std::string& out) {
  for (const auto& c : cases) {
    auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.expect << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.expect;
  }
}

std::vector<std::string> base_args(const std::string& pairs, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a{"zoo", "train", "--pairs", pairs, "--modalities", "audio,text", "--key", "AT", "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace

TEST(ZooTrainCli, BadListingIsOneLineExitTwoAndNoFile) {
  const std::string dir = omnibind::testkit::make_temp_dir("zoo_cli_listing");
  fs::create_directories(dir + "/img");
  make_listing(dir);
  const std::string out = dir + "/X.safetensors";
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string good = "{\"audio\": \"0_0.wav\", \"text\": \"a\"}\n";
  expect_refused({{base_args(write("missing.jsonl", good + "{\"audio\": \"nope.wav\", \"text\": \"b\"}\n"), out),
                   "missing.jsonl:2: no such file"},
                  {base_args(write("badjson.jsonl", good + good + "{\"audio\": \n"), out), "badjson.jsonl:3: bad JSON"},
                  {base_args(write("one.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n"), out), "at least 2 modalities"}},
                 out);
}

TEST(ZooTrainCli, BadOptionsAreOneLineExitTwoAndNoFile) {
  const std::string dir = omnibind::testkit::make_temp_dir("zoo_cli_options");
  fs::create_directories(dir + "/img");
  const std::string pairs = make_listing(dir);
  const std::string out = dir + "/X.safetensors";
  std::ofstream(dir + "/bad.json") << "{\"dim\": \"x\"";
  expect_refused({{base_args(pairs, out, {"--epochs", "0"}), "--epochs must be positive"},
                  {base_args(pairs, out, {"--lr", "-1"}), "--lr must be a positive number"},
                  {base_args(pairs, out, {"--dim", "abc"}), "--dim"},
                  {{"zoo", "train", "--pairs", pairs, "--modalities", "audio,smell", "--key", "AT", "--out", out}, "smell"},
                  {base_args(pairs, out, {"--config", dir + "/bad.json"}), "bad.json"}},
                 out);
}
