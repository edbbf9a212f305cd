// `omnibind embed --expert eva_clip_18b ...` through the binary: OmniBind's EVA_18B embeddings for
// the eva_clip_18b_mini fixture's images and texts (42-token path), from Hugging Face shards, with
// --image-crop floor changing exactly the crop-tie image; bad weights -> one line, exit 2, no file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>

#include "experts/clip_fixture_support.h"
#include "experts/eva_clip_18b_hf_shards.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::testkit::clipfx;
namespace fs = std::filesystem;

const std::string kDir = "fixtures/eva_clip_18b_mini";
std::string fx(const std::string& rel) { return testkit::shared_path(kDir + "/" + rel); }

std::vector<std::string> embed_args(const std::string& weights, const std::string& modality, const std::string& out) {
  return {"embed", "--expert", "eva_clip_18b", "--config", fx("config.json"), "--weights", weights,
          "--bpe", testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"), "--precision", "fp32",
          "--modality", modality, "--out", out};
}

// Runs `args` (ending in --out OUT) on `inputs` (texts with --text) and returns OUT's EVA_18B rows.
at::Tensor run_embed(std::vector<std::string> args, const std::vector<std::string>& inputs, bool texts) {
  const std::string out = args.back();
  for (const auto& x : inputs) {
    if (texts) args.push_back("--text");
    args.push_back(x);
  }
  auto r = testkit::run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return at::Tensor();
  const auto st = tensor_io::read_safetensors(out);
  EXPECT_TRUE(st.tensors.contains("EVA_18B"));
  return tensor_io::to_tensor(st.tensors.at("EVA_18B")).clone();
}

}  // namespace

TEST(EvaClip18bEmbedCli, ShardsGiveOmniBindsEmbeddingsAndFloorCropMovesOnlyTheTieImage) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("eva18b_cli");
  fs::create_directories(dir + "/hf");
  testkit::write_eva18b_hf_shards(fx("weights.safetensors"), 64, 32, dir + "/hf", 2);
  const FixtureInputs in(testkit::shared_path(kDir));
  const auto expected = tensor_io::read_safetensors(fx("expected_model.safetensors"));

  const at::Tensor img = run_embed(embed_args(dir + "/hf", "image", dir + "/img.safetensors"), in.image_files, false);
  ASSERT_TRUE(img.defined());
  expect_embeddings_match(img, get(expected, "image/omnibind_embedding"), in.image_names, "cli image");
  const at::Tensor txt = run_embed(embed_args(dir + "/hf", "text", dir + "/txt.safetensors"), in.texts, true);
  ASSERT_TRUE(txt.defined());
  expect_embeddings_match(txt, get(expected, "text_ctx42/omnibind_embedding"), in.text_names, "cli text42");

  auto floor_args = embed_args(dir + "/hf", "image", dir + "/floor.safetensors");
  floor_args.insert(floor_args.end() - 2, {"--image-crop", "floor"});
  const at::Tensor hf = run_embed(floor_args, in.image_files, false);
  ASSERT_TRUE(hf.defined());
  for (size_t i = 0; i < in.image_names.size(); ++i) {
    const double d = max_abs(hf[static_cast<int64_t>(i)], img[static_cast<int64_t>(i)]);
    if (in.image_names[i] == "crop_tie_224x227") EXPECT_GT(d, 1e-4) << "one row of the crop differs";
    else EXPECT_LE(d, 1e-5) << in.image_names[i];
  }
}

TEST(EvaClip18bEmbedCli, BadWeightsAreOneLineAndExit2) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("eva18b_cli_bad");
  const std::string out = dir + "/x.safetensors";
  auto args = [&](const std::string& w) {
    auto a = embed_args(w, "image", out);
    a.push_back(fx("inputs/train.jpeg"));
    return a;
  };
  fs::create_directories(dir + "/hf");
  testkit::write_eva18b_hf_shards(fx("weights.safetensors"), 64, 32, dir + "/hf", 3);
  fs::resize_file(dir + "/hf/model-00003-of-00003.safetensors", 100);
  testkit::expect_exit2(args(dir + "/hf"), out, "model-00003-of-00003.safetensors");
  fs::remove(dir + "/hf/model-00001-of-00003.safetensors");
  testkit::expect_exit2(args(dir + "/hf/model.safetensors.index.json"), out, "model-00001-of-00003.safetensors: shard missing");
  testkit::expect_exit2(args(testkit::shared_path("fixtures/eva02_clip_mini/weights.pt")), out, "EVA02-CLIP-bigE-style checkpoint");
  testkit::expect_exit2(args(testkit::shared_path("fixtures/imagebind_mini/weights.pt")), out, "not an EVA-CLIP checkpoint");
  auto crop = args(fx("weights.safetensors"));
  crop.insert(crop.end() - 1, {"--image-crop", "middle"});
  testkit::expect_exit2(crop, out, "--image-crop 'middle'");
}
