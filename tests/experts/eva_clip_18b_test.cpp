// EVA-CLIP-18B (expert eva_clip_18b, OmniBind EVA_18B, the Full preset's backbone) against the
// reference on the eva_clip_18b_mini fixture (random weights, official structure and key names,
// reduced widths): pixel tensors and token ids (77 and 42) exact, every intermediate within 1e-5
// relative, embeddings cosine >= 0.99999 and max abs <= 1e-4; the block-level (streamed) forward
// bit-identical to the resident one; the released .fp16.pt layout and the Hugging Face shards;
// missing / truncated shards and other models' files refused in one line.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "omnibind/common/error.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_expert.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/clip_image.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "experts/eva_clip_fixture.h"
#include "experts/eva_clip_18b_hf_shards.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::experts::eva_clip;
using namespace omnibind::testkit::clipfx;  // get, max_abs, max_rel, cosines, expect_*_match
using omnibind::experts::WeightSource;

const char* kFixture = "eva_clip_18b_mini";
std::string fx(const std::string& rel) { return testkit::shared_path(std::string("fixtures/") + kFixture + "/" + rel); }
std::string bpe() { return testkit::EvaClipFixture::bpe(); }

struct Fixture : testkit::EvaClipFixture {
  std::vector<bool> hf_crop_differs;  // inputs.json images[i].resize.hf_crop_differs
  Fixture() : EvaClipFixture(kFixture) {
    for (const auto& im : inputs.json.at("images")) hf_crop_differs.push_back(im.at("resize").value("hf_crop_differs", false));
  }
  // token_ids_ctx42 zero-padded to 77 (what the fixture fed encode_text for the 42-token path).
  at::Tensor ids42_padded() const {
    at::Tensor ids = get(text, "token_ids_ctx42");
    return at::cat({ids, at::zeros({ids.size(0), 77 - ids.size(1)}, at::kLong)}, 1);
  }
};

std::string error_of(const std::function<void()>& f) { return testkit::input_error_of(f); }

std::unique_ptr<experts::Expert> expert(const std::string& weights, const std::string& crop = "") {
  experts::ExpertOptions o;
  o.weights = weights;
  o.config = fx("config.json");
  o.bpe_vocab = bpe();
  o.image_crop = crop;
  return make_eva_clip_18b_expert(o);
}

void write_hf_shards(const Fixture& f, const std::string& dir, int shards) {
  testkit::write_eva18b_hf_shards(fx("weights.safetensors"), f.config.vision.width, f.config.text.width, dir, shards);
}

}  // namespace

TEST(EvaClip18bConfig, BuiltinIsTheReleasedModel) {
  const EvaClipConfig c = builtin_config("EVA-CLIP-18B");
  EXPECT_EQ(c.embed_dim, 1536);
  EXPECT_EQ(c.vision.width, 5120);
  EXPECT_EQ(c.vision.layers, 48);
  EXPECT_EQ(c.vision.heads(), 40);
  EXPECT_EQ(c.vision.mlp_hidden(), 25600);
  EXPECT_TRUE(c.vision.postnorm);
  EXPECT_TRUE(c.vision.use_rms_norm);
  EXPECT_FALSE(c.vision.qkv_bias);
  EXPECT_EQ(c.text.width, 1280);
  EXPECT_EQ(c.text.layers, 32);
  EXPECT_EQ(c.parameter_count(), 18325482241LL);  // docs/experts/eva_clip_18b.md
  EXPECT_EQ(builtin_config("EVA_18B").vision.width, 5120);
}

TEST(EvaClip18bConfig, FixtureConfigJsonIsTheMiniModel) {
  OMNIBIND_REQUIRE_SHARED();
  const EvaClipConfig c = load_config(fx("config.json"));
  EXPECT_EQ(c.embed_dim, 48);
  EXPECT_EQ(c.vision.width, 64);
  EXPECT_EQ(c.vision.heads(), 4);
  EXPECT_EQ(c.vision.mlp_hidden(), 320);
  EXPECT_TRUE(c.vision.use_rms_norm);
  EXPECT_FALSE(c.vision.qkv_bias);
  EXPECT_EQ(c.parameter_count(), 1783713);  // the fixture README
  // The recording source asks for exactly the fixture's keys, in the file's order.
  auto log = std::make_shared<std::vector<WeightSource::Recorded>>();
  EvaClipModel::load(c, WeightSource::recording(at::kFloat, log));
  Fixture f;
  std::set<std::string> asked, have(f.weights.tensors.names().begin(), f.weights.tensors.names().end());
  for (auto& r : *log) asked.insert(r.name);
  EXPECT_EQ(asked, have);
  std::vector<std::string> keys = expected_keys(c);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), have);
}

TEST(EvaClip18bPreprocess, PixelTensorsIdenticalToReferenceAndTheFloorCropOption) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto e = expert(fx("weights.safetensors"));
  auto hf = expert(fx("weights.safetensors"), "floor");
  int differing = 0;
  for (size_t i = 0; i < f.inputs.image_files.size(); ++i) {
    const auto in = experts::MediaInput::from_path(f.inputs.image_files[i]);
    at::Tensor got = e->preprocess(experts::Modality::Image, in);
    at::Tensor want = get(f.vision, f.inputs.image_names[i] + "/pixel_values");
    EXPECT_TRUE(at::equal(got, want)) << f.inputs.image_names[i] << " max abs " << max_abs(got, want);
    // floor (CLIPImageProcessor): the same resize; one row/column earlier where d = 4k + 3.
    at::Tensor h = hf->preprocess(experts::Modality::Image, in);
    if (!f.hf_crop_differs[i]) {
      EXPECT_LE(max_abs(h, want), 1e-6) << f.inputs.image_names[i];  // float64 rescale: last-bit differences only
    } else {
      ++differing;
      EXPECT_GT(max_abs(h, want), 1e-3) << f.inputs.image_names[i];
      EXPECT_LE(max_abs(h.narrow(1, 1, 223), want.narrow(1, 0, 223)), 1e-6) << f.inputs.image_names[i];
    }
  }
  EXPECT_EQ(differing, 1);  // crop_tie_224x227
  EXPECT_NE(error_of([&] { expert(fx("weights.safetensors"), "ceil"); }).find("--image-crop 'ceil'"), std::string::npos);
}

TEST(EvaClip18bPreprocess, TokenIdsAt77AndOmniBinds42) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const preprocess::ClipTokenizer tok(bpe(), preprocess::ClipTokenizer::Specials::OpenClip);
  EXPECT_TRUE(at::equal(tok.tokenize(f.inputs.texts, 77), get(f.text, "token_ids")));
  EXPECT_TRUE(at::equal(tok.tokenize(f.inputs.texts, 42), get(f.text, "token_ids_ctx42")));
  EXPECT_TRUE(at::equal(experts::vit::first_argmax(get(f.text, "token_ids")), get(f.text, "argmax_index")));
  // The expert: 42-token truncation, zero-padded to the model's 77 positions.
  auto e = expert(fx("weights.safetensors"));
  std::vector<at::Tensor> rows;
  for (const auto& t : f.inputs.texts) rows.push_back(e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(t)));
  at::Tensor ids = at::stack(rows);
  for (size_t r = 0; r < rows.size(); ++r)
    EXPECT_TRUE(at::equal(ids[r], f.ids42_padded()[r])) << f.inputs.text_names[r];
  EXPECT_TRUE(at::equal(experts::vit::first_argmax(ids), get(f.text, "argmax_index_ctx42")));
}

TEST(EvaClip18bParity, VisionIntermediatesAndEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const EvaClipModel m = f.load(at::kFloat);
  f.expect_vision_parity(m);
  // No head bias, no norm bias: the model holds exactly what the file has (strict coverage).
  EXPECT_FALSE(m.visual.head.bias.defined());
  EXPECT_TRUE(m.visual.norm.rms);
  EXPECT_TRUE(m.visual.blocks.blocks[0].norm1.rms);
  EXPECT_FALSE(m.visual.blocks.blocks[0].attn.qkv.bias.defined());
}

TEST(EvaClip18bParity, TextIntermediatesAndEmbeddingsAt77And42) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const EvaClipModel m = f.load(at::kFloat);
  f.expect_text_parity(m, f.ids(), "text");
  f.expect_text_parity(m, f.ids42_padded(), "text_ctx42");  // OmniBind's 42-token path
}

TEST(EvaClip18bParity, BlockByBlockForwardIsBitIdenticalToTheResidentOne) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const EvaClipModel m = f.load(at::kFloat);
  const at::Tensor px = f.pixels();
  const at::Tensor resident = m.encode_image(px);
  // Stem + final norm + head only; blocks built one at a time from the source and dropped.
  const WeightSource w(f.weights.tensors, at::kFloat, "EVA-CLIP");
  const EvaVisionTower t = EvaVisionTower::load(w, f.config.vision, f.config.embed_dim, EvaKeyLayout::Official, false);
  EXPECT_TRUE(t.blocks.blocks.empty());
  at::Tensor x = t.embed_patches(px);
  for (int64_t i = 0; i < f.config.vision.layers; ++i) {
    const EvaVisionBlock b = t.load_block(w, i);
    x = EvaVisionTower::run_block(b, x);
  }
  EXPECT_TRUE(at::equal(t.finish(x), resident));
  // Batch-of-one through the block loop gives the batch row (the reference: 0.0 difference).
  at::Tensor one = t.embed_patches(px.narrow(0, 5, 1));
  for (int64_t i = 0; i < f.config.vision.layers; ++i) one = EvaVisionTower::run_block(t.load_block(w, i), one);
  EXPECT_LE(max_abs(t.finish(one)[0], resident[5]), 1e-6);
}

TEST(EvaClip18bExpert, FromTheReleasedLayoutInFloat16EmbedsFilesAndTexts) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  // The released EVA_CLIP_18B_psz14_s6B.fp16.pt layout: a bare state dict in a torch zip, float16.
  auto dir = testkit::make_temp_dir("eva18b_pt");
  std::vector<std::pair<std::string, at::Tensor>> t16;
  for (auto& [n, t] : f.tensors()) t16.emplace_back(n, n == "logit_scale" ? t : t.to(at::kHalf));
  tensor_io::write_torch_checkpoint(dir + "/EVA_CLIP_18B_psz14_s6B.fp16.pt", t16);
  tensor_io::write_torch_checkpoint(dir + "/fp32.pt", f.tensors());

  auto e = expert(dir + "/fp32.pt");
  EXPECT_EQ(e->name(), "eva_clip_18b");
  EXPECT_EQ(e->key(), "EVA_18B");
  EXPECT_EQ(e->dim(), 48);
  std::vector<at::Tensor> px, ids;
  for (const auto& file : f.inputs.image_files)
    px.push_back(e->preprocess(experts::Modality::Image, experts::MediaInput::from_path(file)));
  for (const auto& t : f.inputs.texts) ids.push_back(e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(t)));
  expect_embeddings_match(e->encode(experts::Modality::Image, at::stack(px)), get(f.model, "image/omnibind_embedding"),
                          f.inputs.image_names, "expert image fp32");
  expect_embeddings_match(e->encode(experts::Modality::Text, at::stack(ids)), get(f.model, "text_ctx42/omnibind_embedding"),
                          f.inputs.text_names, "expert text42 fp32");

  // float16 weights, float32 compute: within what rounding the weights to fp16 costs (README: ~4e-4).
  auto h = expert(dir + "/EVA_CLIP_18B_psz14_s6B.fp16.pt");
  const double ci = cosines(h->encode(experts::Modality::Image, at::stack(px)), get(f.model, "image/omnibind_embedding")).min().item<double>();
  const double ct = cosines(h->encode(experts::Modality::Text, at::stack(ids)), get(f.model, "text_ctx42/omnibind_embedding")).min().item<double>();
  std::printf("fp16 weights vs reference min cosine: image %.7f text %.7f\n", ci, ct);
  EXPECT_GE(ci, 0.9999);
  EXPECT_GE(ct, 0.9999);
}

TEST(EvaClip18bExpert, HuggingFaceShardsGiveTheSameEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto dir = testkit::make_temp_dir("eva18b_hf");
  write_hf_shards(f, dir, 3);
  const at::Tensor px = f.pixels(), ids = f.ids42_padded();
  for (const std::string& path : {dir, dir + "/model.safetensors.index.json", dir + "/model-00002-of-00003.safetensors"}) {
    auto e = expert(path);
    expect_embeddings_match(e->encode(experts::Modality::Image, px), get(f.model, "image/omnibind_embedding"),
                            f.inputs.image_names, "hf shards image fp32");
    expect_embeddings_match(e->encode(experts::Modality::Text, ids), get(f.model, "text_ctx42/omnibind_embedding"),
                            f.inputs.text_names, "hf shards text42 fp32");
  }
  // Block by block from the shards, as a streamer reads them.
  const EvaClipCheckpoint ck = open_checkpoint(dir);
  EXPECT_EQ(ck.layout, EvaKeyLayout::HuggingFace);
  const WeightSource w(*ck.dict, at::kFloat, "EVA-CLIP");
  const EvaVisionTower t = EvaVisionTower::load(w, f.config.vision, f.config.embed_dim, ck.layout, false);
  at::Tensor x = t.embed_patches(px);
  for (int64_t i = 0; i < f.config.vision.layers; ++i) x = EvaVisionTower::run_block(t.load_block(w, i), x);
  expect_embeddings_match(omnibind_normalize(t.finish(x)), get(f.model, "image/omnibind_embedding"), f.inputs.image_names,
                          "hf shards streamed image");
}

TEST(EvaClip18bWeights, MissingOrTruncatedShardIsNamed) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto dir = testkit::make_temp_dir("eva18b_bad");
  write_hf_shards(f, dir, 3);
  const std::string shard2 = dir + "/model-00002-of-00003.safetensors";
  // Truncated: cut the second shard in half.
  const auto size = std::filesystem::file_size(shard2);
  std::filesystem::resize_file(shard2, size / 2);
  std::string msg = error_of([&] { expert(dir); });
  EXPECT_NE(msg.find("model-00002-of-00003.safetensors"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // Missing.
  std::filesystem::remove(shard2);
  msg = error_of([&] { expert(dir + "/model.safetensors.index.json"); });
  EXPECT_NE(msg.find("model-00002-of-00003.safetensors: shard missing"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // One shard without its index.
  std::filesystem::remove(dir + "/model.safetensors.index.json");
  msg = error_of([&] { expert(dir + "/model-00003-of-00003.safetensors"); });
  EXPECT_NE(msg.find("one shard of 3"), std::string::npos) << msg;
}

TEST(EvaClip18bWeights, AnotherModelsFileIsOneLine) {
  OMNIBIND_REQUIRE_SHARED();
  // EVA02-CLIP-bigE's mini file against the 18B config: structure named, one line.
  std::string msg = error_of([&] { expert(testkit::shared_path("fixtures/eva02_clip_mini/weights.safetensors")); });
  EXPECT_NE(msg.find("EVA02-CLIP-bigE-style checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("eva_clip_18b"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // ImageBind's file.
  msg = error_of([&] { expert(testkit::shared_path("fixtures/imagebind_mini/weights.safetensors")); });
  EXPECT_NE(msg.find("not an EVA-CLIP checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ImageBind"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // The 18B mini file to the bigE expert (built-in size): refused by structure too.
  experts::ExpertOptions o;
  o.weights = fx("weights.safetensors");
  msg = error_of([&] { make_eva_clip_expert(o); });
  EXPECT_NE(msg.find("EVA-CLIP-18B-style checkpoint"), std::string::npos) << msg;
  // The released size against the mini file: missing blocks named and counted.
  experts::ExpertOptions o18;
  o18.weights = fx("weights.safetensors");
  msg = error_of([&] { make_eva_clip_18b_expert(o18); });
  EXPECT_NE(msg.find("missing for an EVA-CLIP checkpoint of EVA-CLIP-18B"), std::string::npos) << msg;
}
