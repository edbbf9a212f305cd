// `omnibind embed --expert siglip ...`: the siglip_mini reference embeddings end to end (image files
// and texts, both layouts), and bad inputs (a file that is not a SentencePiece model, an over-long
// text, a checkpoint of another family, a 1-pixel-high image) -> one line on stderr, exit 2, no file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "omnibind/media/media_encode.h"
#include "testing/test_support.h"

namespace {
using omnibind::testkit::expect_exit2;
using omnibind::testkit::read_f32;

namespace fs = std::filesystem;
namespace testkit = omnibind::testkit;

std::string fixture(const std::string& folder, const std::string& rel) {
  return testkit::shared_path("fixtures/siglip_mini/" + folder + "/" + rel);
}

// test_cli links no torch: a minimal safetensors F32 reader (shape, values).
// Row i of got [N, d] against row j of want [M, d]: cosine and max abs.
std::pair<double, double> compare_row(const std::vector<float>& got, size_t i, const std::vector<float>& want, size_t j,
                                      size_t d) {
  double dot = 0, na = 0, nb = 0, worst = 0;
  for (size_t k = 0; k < d; ++k) {
    const double a = got[i * d + k], b = want[j * d + k];
    dot += a * b;
    na += a * a;
    nb += b * b;
    worst = std::max(worst, std::abs(a - b));
  }
  return {dot / std::sqrt(na * nb), worst};
}

std::vector<std::string> base_args(const std::string& folder, const std::string& modality, const std::string& out) {
  return {"embed", "--expert", "siglip", "--config", fixture(folder, "config.json"), "--weights",
          fixture(folder, "weights.safetensors"), "--vocab", fixture(folder, "spiece.model"), "--modality", modality,
          "--out", out};
}

}  // namespace

TEST(SiglipEmbedCli, ImagesAndTextsLikeTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("siglip_cli");
  for (const std::string folder : {"large16", "so400m14"}) {
    const std::string key = folder == "large16" ? "SigLip_384" : "SigLip_400M_384";
    const std::string expected = fixture(folder, "expected_model.safetensors");
    // Images, in input order (a reordered subset: rows follow the command line).
    const std::string img_out = dir + "/" + folder + "_img.safetensors";
    auto args = base_args(folder, "image", img_out);
    const std::vector<std::pair<std::string, size_t>> images = {
        {"inputs/tiny_rgb_7x5.png", 5}, {"inputs/dog_image.jpg", 0}, {"inputs/train.jpeg", 1}, {"inputs/very_wide_600x50.png", 4}};
    for (const auto& [f, row] : images) args.push_back(fixture(folder, f));
    auto r = testkit::run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto [shape, emb] = read_f32(img_out, key);
    const size_t d = folder == "large16" ? 32 : 36;
    ASSERT_EQ(shape, (std::vector<int64_t>{4, static_cast<int64_t>(d)})) << folder;
    auto [wshape, want] = read_f32(expected, "image/omnibind_embedding");
    for (size_t i = 0; i < images.size(); ++i) {
      auto [cos, worst] = compare_row(emb, i, want, images[i].second, d);
      EXPECT_GE(cos, 0.99999) << folder << " " << images[i].first;
      EXPECT_LE(worst, 1e-4) << folder << " " << images[i].first;
    }
    // Texts given with --text (rows of inputs.json: 0 "a photo of train", 2 "A Dog.", 5 "").
    const std::string txt_out = dir + "/" + folder + "_txt.safetensors";
    args = base_args(folder, "text", txt_out);
    for (const char* t : {"a photo of train", "A Dog.", ""}) args.insert(args.end(), {"--text", t});
    r = testkit::run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto [tshape, temb] = read_f32(txt_out, key);
    ASSERT_EQ(tshape, (std::vector<int64_t>{3, static_cast<int64_t>(d)})) << folder;
    auto [twshape, twant] = read_f32(expected, "text/omnibind_embedding");
    const size_t rows[] = {0, 2, 5};
    for (size_t i = 0; i < 3; ++i) {
      auto [cos, worst] = compare_row(temb, i, twant, rows[i], d);
      EXPECT_GE(cos, 0.99999) << folder << " text " << rows[i];
      EXPECT_LE(worst, 1e-4) << folder << " text " << rows[i];
    }
  }
}

TEST(SiglipEmbedCli, BadInputsAreOneLineExit2) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("siglip_cli_bad"), out = dir + "/out.safetensors";
  // A --vocab file that is not a SentencePiece model.
  auto args = base_args("large16", "text", out);
  args[8] = fixture("large16", "config.json");
  args.insert(args.end(), {"--text", "a dog"});
  expect_exit2(args, out, "not a SentencePiece model");
  // An over-long text (the reference cannot embed it either).
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "the quick brown fox ";
  args = base_args("large16", "text", out);
  args.insert(args.end(), {"--text", "a dog", "--text", long_text});
  expect_exit2(args, out, "more than the model's 64 positions");
  // A checkpoint of another family, with and without --config.
  args = base_args("large16", "image", out);
  args[6] = testkit::shared_path("fixtures/imagebind_mini/weights.safetensors");
  args.push_back(fixture("large16", "inputs/dog_image.jpg"));
  expect_exit2(args, out, "SigLIP");
  args.erase(args.begin() + 3, args.begin() + 5);  // drop --config: the size is read off the checkpoint
  expect_exit2(args, out, "not a SigLIP checkpoint");
  // An unknown size.
  args = {"embed", "--expert", "siglip", "--size", "base16", "--weights", fixture("large16", "weights.safetensors"),
          "--modality", "image", "--out", out, fixture("large16", "inputs/dog_image.jpg")};
  expect_exit2(args, out, "large16, so400m14");
  // Text without a SentencePiece model.
  args = {"embed", "--expert", "siglip", "--config", fixture("large16", "config.json"), "--weights",
          fixture("large16", "weights.safetensors"), "--modality", "text", "--out", out, "--text", "a dog"};
  expect_exit2(args, out, "--vocab spiece.model");
  // A 1-pixel-high image (transformers fails on it too).
  const std::string png = dir + "/row.png";
  omnibind::media::Image row;
  row.width = 5;
  row.height = 1;
  row.rgb.assign(15, 200);
  omnibind::media::write_png(png, row);
  args = base_args("large16", "image", out);
  args.push_back(png);
  expect_exit2(args, out, "1 pixel high");
}

TEST(SiglipEmbedCli, InspectRecognisesTheCheckpoint) {
  OMNIBIND_REQUIRE_SHARED();
  auto r = testkit::run_cli({"inspect", fixture("large16", "weights.safetensors")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("SigLIP checkpoint (expert siglip"), std::string::npos) << r.out;
}
