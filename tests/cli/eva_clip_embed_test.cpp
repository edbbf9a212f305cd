// `omnibind embed --expert eva_clip ...`: the reference's OmniBind embeddings end to end for
// image files and texts (rows in input order, key EVA_E14p), and bad inputs -> one line on
// stderr, exit 2, no output file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {
using omnibind::testkit::expect_exit2;

namespace fs = std::filesystem;
namespace testkit = omnibind::testkit;
using namespace omnibind;

std::string fx(const std::string& rel) { return testkit::shared_path("fixtures/eva02_clip_mini/" + rel); }
std::string bpe() { return testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"); }

std::vector<std::string> base_args(const std::string& modality, const std::string& out) {
  return {"embed", "--expert", "eva_clip", "--config", fx("config.json"), "--weights", fx("weights.pt"),
          "--bpe",  bpe(),     "--modality", modality, "--out", out};
}

at::Tensor read(const std::string& file, const std::string& key) {
  auto f = tensor_io::read_safetensors(file);
  return tensor_io::to_tensor(f.tensors.at(key)).clone();
}

void expect_rows_match(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  auto g = got.to(at::kDouble), w = want.to(at::kDouble);
  auto cos = (g * w).sum(-1) / (g.norm(2, {-1}) * w.norm(2, {-1}));
  for (int64_t i = 0; i < got.size(0); ++i) {
    EXPECT_GE(cos[i].item<double>(), 0.99999) << "row " << i;
    EXPECT_LE((g[i] - w[i]).abs().max().item<double>(), 1e-4) << "row " << i;
  }
}

TEST(EvaClipEmbedCli, ImagesAndTextsGiveTheReferenceEmbeddingsInInputOrder) {
  OMNIBIND_REQUIRE_SHARED();
  std::ifstream in(fx("inputs.json"));
  auto j = nlohmann::json::parse(in);
  std::string dir = testkit::make_temp_dir("eva_cli");

  // Images, in reverse order: rows follow the command line.
  auto args = base_args("image", dir + "/img.safetensors");
  std::vector<int64_t> order;
  for (int64_t i = static_cast<int64_t>(j["images"].size()) - 1; i >= 0; --i) {
    args.push_back(fx("inputs/" + j["images"][i]["file"].get<std::string>()));
    order.push_back(i);
  }
  args.insert(args.end(), {"--batch", "3"});
  auto r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  at::Tensor want = read(fx("expected_model.safetensors"), "image/omnibind_embedding");
  expect_rows_match(read(dir + "/img.safetensors", "EVA_E14p"), want.index_select(0, at::tensor(order)));

  // Texts via --text (the empty text and the over-long one included), bf16 too.
  args = base_args("text", dir + "/txt.safetensors");
  for (const auto& t : j["texts"]) args.insert(args.end(), {"--text", t["text"].get<std::string>()});
  r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_rows_match(read(dir + "/txt.safetensors", "EVA_E14p"), read(fx("expected_model.safetensors"), "text/omnibind_embedding"));
  auto meta = tensor_io::read_safetensors(dir + "/txt.safetensors").metadata;
  EXPECT_EQ(meta["expert"], "eva_clip");
  EXPECT_EQ(meta["key"], "EVA_E14p");
  EXPECT_EQ(meta["dim"], "48");

  args = base_args("text", dir + "/bf16.safetensors");
  args.insert(args.end(), {"--precision", "bf16", "--text", "a photo of train"});
  r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  at::Tensor b = read(dir + "/bf16.safetensors", "EVA_E14p"), w = read(fx("expected_model.safetensors"), "text/omnibind_embedding")[0];
  EXPECT_GE((b[0].to(at::kDouble) * w.to(at::kDouble)).sum().item<double>(), 0.999);
}

TEST(EvaClipEmbedCli, BadInputsAreOneLineExit2WithoutOutput) {
  OMNIBIND_REQUIRE_SHARED();
  std::string dir = testkit::make_temp_dir("eva_cli"), out = dir + "/emb.safetensors";
  const std::string image = fx("inputs/train.jpeg");
  // A checkpoint of another family.
  auto args = base_args("image", out);
  args[6] = testkit::shared_path("fixtures/imagebind_mini/weights.safetensors");
  args.push_back(image);
  expect_exit2(args, out, "not an EVA-CLIP checkpoint");
  // Missing tensors: a file with the stem only.
  tensor_io::write_tensors(dir + "/stem.safetensors", {{"visual.cls_token", at::zeros({1, 1, 64})},
                                                       {"visual.patch_embed.proj.weight", at::zeros({64, 3, 14, 14})}});
  args = base_args("image", out);
  args[6] = dir + "/stem.safetensors";
  args.push_back(image);
  expect_exit2(args, out, "tensor(s) missing for an EVA-CLIP checkpoint");
  // The built-in released size against the mini weights.
  expect_exit2({"embed", "--expert", "eva_clip", "--weights", fx("weights.pt"), "--modality", "image", "--out", out, image},
               out, "missing");
  // Unsupported config switch, unknown size, bad precision, modality.
  std::ofstream(dir + "/rope.json") << R"({"embed_dim": 48, "vision_cfg": {"eva_model_name": "x", "rope": true}, "text_cfg": {}})";
  args = base_args("image", out);
  args[4] = dir + "/rope.json";
  args.push_back(image);
  expect_exit2(args, out, "vision_cfg.rope");
  expect_exit2({"embed", "--expert", "eva_clip", "--size", "L-14", "--weights", fx("weights.pt"), "--modality", "image",
                "--out", out, image},
               out, "unknown EVA-CLIP size");
  args = base_args("audio", out);
  args.push_back(image);
  expect_exit2(args, out, "does not embed audio");
  // Bad texts: invalid UTF-8 in a text file; text without --bpe.
  std::ofstream(dir + "/latin1.txt", std::ios::binary) << "caf\xE9 au lait";
  args = base_args("text", out);
  args.push_back(dir + "/latin1.txt");
  expect_exit2(args, out, "invalid UTF-8");
  expect_exit2({"embed", "--expert", "eva_clip", "--config", fx("config.json"), "--weights", fx("weights.pt"), "--modality",
                "text", "--out", out, "--text", "a dog"},
               out, "--bpe");
  // A corrupt image after a good one: nothing is written.
  std::ofstream(dir + "/broken.jpg", std::ios::binary) << "\xFF\xD8\xFF\xE0 not really a jpeg";
  args = base_args("image", out);
  args.insert(args.end(), {image, dir + "/broken.jpg"});
  expect_exit2(args, out, "broken.jpg");
}

}  // namespace

TEST(EvaClipEmbedCli, InspectRecognisesTheCheckpoint) {
  OMNIBIND_REQUIRE_SHARED();
  for (const char* file : {"weights.pt", "weights.safetensors"}) {
    auto r = testkit::run_cli({"inspect", fx(file)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("EVA-CLIP checkpoint (expert eva_clip"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("blocks, patch 14"), std::string::npos) << r.out;
  }
}
