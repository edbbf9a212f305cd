// EVA02-CLIP-bigE-14-plus (expert eva_clip, OmniBind EVA_E14p) against the reference on the
// eva02_clip_mini fixture (random weights, official structure and key names, reduced widths):
// pixel tensors and token ids exact, every intermediate within 1e-5 relative, embeddings cosine
// >= 0.99999 and max abs <= 1e-4 for every image and text; configs, checkpoint layouts and bad
// checkpoints.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/common/error.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_expert.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/preprocess/imagebind_image.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "experts/eva_clip_fixture.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts::eva_clip;
using omnibind::experts::WeightSource;

namespace {

std::string fx(const std::string& rel) { return testkit::shared_path("fixtures/eva02_clip_mini/" + rel); }
std::string bpe() { return testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"); }

using namespace testkit::clipfx;  // get, max_abs, max_rel, cosines, expect_*_match

struct Fixture : testkit::EvaClipFixture {
  Fixture() : EvaClipFixture("eva02_clip_mini") {}
};

std::string error_of(const std::function<void()>& f) { return testkit::input_error_of(f); }

}  // namespace

TEST(EvaClipConfig, BuiltinIsEva02ClipBigE14Plus) {
  const EvaClipConfig c = builtin_config("");
  EXPECT_EQ(c.embed_dim, 1024);
  EXPECT_EQ(c.vision.heads(), 16);
  EXPECT_EQ(c.vision.width / c.vision.heads(), 112);
  EXPECT_EQ(c.vision.mlp_hidden(), 15360);
  EXPECT_EQ(c.vision.tokens(), 257);
  EXPECT_TRUE(c.vision.postnorm);
  EXPECT_EQ(c.text.width, 1280);
  EXPECT_EQ(c.text.layers, 32);
  EXPECT_EQ(c.parameter_count(), 5044889089LL);  // docs/experts/eva_clip.md
  EXPECT_EQ(builtin_config("EVA_E14p").vision.layers, 64);
  EXPECT_NE(error_of([] { builtin_config("EVA02-CLIP-L-14"); }).find("unknown EVA-CLIP size"), std::string::npos);
}

TEST(EvaClipConfig, FixtureConfigJsonIsTheMiniModel) {
  OMNIBIND_REQUIRE_SHARED();
  const EvaClipConfig c = load_config(fx("config.json"));
  EXPECT_EQ(c.embed_dim, 48);
  EXPECT_EQ(c.vision.width, 64);
  EXPECT_EQ(c.vision.layers, 2);
  EXPECT_EQ(c.vision.heads(), 4);
  EXPECT_EQ(c.vision.mlp_hidden(), 548);  // int(64 * 8.571428571428571): truncation
  EXPECT_TRUE(c.vision.postnorm);
  EXPECT_EQ(c.text.width, 32);
  EXPECT_EQ(c.text.heads, 4);
  EXPECT_EQ(c.parameter_count(), 1843161);  // observations.json
}

TEST(EvaClipConfig, SwitchesThisPortDoesNotImplementAreRefusedByName) {
  auto dir = testkit::make_temp_dir("eva_cfg");
  auto write = [&](const std::string& name, const std::string& vision_extra, const std::string& text_extra = "") {
    std::ofstream(dir + "/" + name) << R"({"embed_dim": 16, "vision_cfg": {"image_size": 224, "layers": 1, "width": 32,
      "head_width": 8, "patch_size": 14, "eva_model_name": "eva-clip-4b-14-x")"
                                    << vision_extra << R"(}, "text_cfg": {"width": 16, "heads": 2, "layers": 1)"
                                    << text_extra << "}}";
    return dir + "/" + name;
  };
  // Plain config: defaults of CLIPVisionCfg (pre-norm, mlp_ratio 4) and CLIPTextCfg.
  const EvaClipConfig ok = load_config(write("ok.json", ""));
  EXPECT_FALSE(ok.vision.postnorm);
  EXPECT_EQ(ok.vision.mlp_hidden(), 128);
  EXPECT_EQ(ok.text.context_length, 77);
  EXPECT_NE(error_of([&] { load_config(write("rope.json", R"(, "rope": true)")); }).find("vision_cfg.rope"), std::string::npos);
  EXPECT_NE(error_of([&] { load_config(write("subln.json", R"(, "subln": true)")); }).find("vision_cfg.subln"), std::string::npos);
  EXPECT_NE(error_of([&] { load_config(write("swiglu.json", R"(, "naiveswiglu": true)")); }).find("naiveswiglu"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_config(write("gap.json", R"(, "global_average_pool": true)")); }).find("global_average_pool"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_config(write("hf.json", "", R"(, "hf_model_name": "xlm-roberta-large")")); }).find("hf_model_name"),
            std::string::npos);
  // width 32 / head_width 12 -> 2 heads of 16 (the reference's head_dim = dim // heads): valid.
  EXPECT_EQ(load_config(write("hw.json", R"(, "head_width": 12)")).vision.heads(), 2);
  std::ofstream(dir + "/odd.json") << R"({"embed_dim": 16, "vision_cfg": {"layers": 1, "width": 50, "head_width": 16,
    "patch_size": 14, "eva_model_name": "x"}, "text_cfg": {"width": 16, "heads": 2, "layers": 1}})";
  EXPECT_NE(error_of([&] { load_config(dir + "/odd.json"); }).find("equal heads"), std::string::npos);
  std::ofstream(dir + "/timm.json") << R"({"embed_dim": 16, "vision_cfg": {"width": 32}, "text_cfg": {}})";
  EXPECT_NE(error_of([&] { load_config(dir + "/timm.json"); }).find("eva_model_name"), std::string::npos);
  std::ofstream(dir + "/junk.json") << "{not json";
  EXPECT_NE(error_of([&] { load_config(dir + "/junk.json"); }).find("not valid JSON"), std::string::npos);
}

TEST(EvaClipPreprocess, PixelTensorsIdenticalToReference) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  for (size_t i = 0; i < f.inputs.image_files.size(); ++i) {
    at::Tensor got = preprocess::imagebind_image_input(media::decode_image_file(f.inputs.image_files[i]));
    at::Tensor want = get(f.vision, f.inputs.image_names[i] + "/pixel_values");
    EXPECT_TRUE(at::equal(got, want)) << f.inputs.image_names[i] << " max abs " << max_abs(got, want);
  }
}

TEST(EvaClipPreprocess, TokenIdsIdenticalToReference) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const preprocess::ClipTokenizer tok(bpe(), preprocess::ClipTokenizer::Specials::OpenClip);
  at::Tensor got = tok.tokenize(f.inputs.texts, 77);
  at::Tensor want = f.ids();
  ASSERT_EQ(got.sizes(), want.sizes());
  for (int64_t r = 0; r < want.size(0); ++r)
    EXPECT_TRUE(at::equal(got[r], want[r])) << f.inputs.text_names[r] << "\n got  " << got[r] << "\n want " << want[r];
  EXPECT_TRUE(at::equal(experts::vit::first_argmax(got), get(f.text, "argmax_index")));
  // The literal <end_of_text> inside a text is 49407 (pooling stops there); OpenAI's spelling is text.
  at::Tensor lit = tok.tokenize({"a dog <END_OF_TEXT> and a cat", "a dog <|endoftext|> and a cat"}, 77);
  EXPECT_EQ(lit[0][3].item<int64_t>(), 49407);
  EXPECT_EQ(experts::vit::first_argmax(lit)[0].item<int64_t>(), 3);
  EXPECT_NE(lit[1][3].item<int64_t>(), 49407);
}

TEST(EvaClipParity, VisionIntermediatesAndEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  f.expect_vision_parity(f.load(at::kFloat));
}

TEST(EvaClipParity, TextIntermediatesAndEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  f.expect_text_parity(f.load(at::kFloat), f.ids());
}

TEST(EvaClipParity, ExpertFromTheTorchFileEmbedsFilesAndTextsLikeOmniBind) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  experts::ExpertOptions o;
  o.weights = fx("weights.pt");  // torch.save of the bare state dict, the released file's layout
  o.config = fx("config.json");
  o.bpe_vocab = bpe();
  auto e = make_eva_clip_expert(o);
  EXPECT_EQ(e->name(), "eva_clip");
  EXPECT_EQ(e->key(), "EVA_E14p");
  EXPECT_EQ(e->dim(), 48);
  std::vector<at::Tensor> px, ids;
  for (const auto& file : f.inputs.image_files)
    px.push_back(e->preprocess(experts::Modality::Image, experts::MediaInput::from_path(file)));
  for (const auto& t : f.inputs.texts) ids.push_back(e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(t)));
  EXPECT_TRUE(at::equal(at::stack(px), f.pixels()));
  EXPECT_TRUE(at::equal(at::stack(ids), f.ids()));
  expect_embeddings_match(e->encode(experts::Modality::Image, at::stack(px)), get(f.model, "image/omnibind_embedding"),
                          f.inputs.image_names, "expert image fp32");
  expect_embeddings_match(e->encode(experts::Modality::Text, at::stack(ids)), get(f.model, "text/omnibind_embedding"),
                          f.inputs.text_names, "expert text fp32");
  // One item alone gives its row of the batch.
  at::Tensor one = e->encode(experts::Modality::Image, px[3].unsqueeze(0));
  EXPECT_LE(max_abs(one[0], get(f.model, "image/omnibind_embedding")[3]), 1e-4);
  EXPECT_NE(error_of([&] { e->preprocess(experts::Modality::Audio, experts::MediaInput::from_path(f.inputs.image_files[0])); })
                .find("does not embed audio"),
            std::string::npos);
}

TEST(EvaClipParity, Bf16TracksFloat32) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  const EvaClipModel m32 = f.load(at::kFloat), m16 = f.load(at::kBFloat16);
  at::Tensor px = f.pixels(), ids = f.ids();
  at::Tensor i16 = omnibind_normalize(m16.encode_image(px)), t16 = omnibind_normalize(m16.encode_text(ids));
  EXPECT_EQ(i16.scalar_type(), at::kFloat);
  const double ci = cosines(i16, get(f.model, "image/omnibind_embedding")).min().item<double>();
  const double ct = cosines(t16, get(f.model, "text/omnibind_embedding")).min().item<double>();
  std::printf("bf16 vs reference min cosine: image %.6f text %.6f\n", ci, ct);
  EXPECT_GE(ci, 0.999);
  EXPECT_GE(ct, 0.999);
  // bf16 weights are the stored 16-bit values: a bf16 copy of the file is used without conversion.
  auto dir = testkit::make_temp_dir("eva_bf16");
  std::vector<std::pair<std::string, at::Tensor>> t16s;
  for (const auto& n : f.weights.tensors.names()) t16s.emplace_back(n, tensor_io::to_tensor(f.weights.tensors.at(n)).to(at::kBFloat16));
  tensor_io::write_tensors(dir + "/bf16.safetensors", t16s);
  auto sd = tensor_io::load_checkpoint(dir + "/bf16.safetensors");
  const EvaClipModel mb = EvaClipModel::load(f.config, WeightSource(sd, at::kBFloat16, "EVA-CLIP"));
  const auto& raw = sd.at("visual.blocks.0.mlp.fc1.weight");
  EXPECT_EQ(mb.visual.blocks.blocks[0].mlp.fc1.weight.data_ptr(), static_cast<const void*>(raw.data + raw.storage_offset * 2));
  EXPECT_GE(cosines(omnibind_normalize(mb.encode_image(px)), i16).min().item<double>(), 0.99999);
}

namespace {
// The fixture's state dict as at::Tensors, in order.
std::vector<std::pair<std::string, at::Tensor>> fixture_tensors(const Fixture& f) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& n : f.weights.tensors.names()) out.emplace_back(n, tensor_io::to_tensor(f.weights.tensors.at(n)));
  return out;
}
std::string expert_error(const std::string& weights, const std::string& config) {
  experts::ExpertOptions o;
  o.weights = weights;
  o.config = config;
  return error_of([&] { make_eva_clip_expert(o); });
}
}  // namespace

TEST(EvaClipWeights, OtherFamiliesAreRefusedByName) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string msg = expert_error(testkit::shared_path("fixtures/imagebind_mini/weights.safetensors"), fx("config.json"));
  EXPECT_NE(msg.find("not an EVA-CLIP checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ImageBind"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  auto dir = testkit::make_temp_dir("eva_w");
  tensor_io::write_tensors(dir + "/oc.safetensors", {{"visual.conv1.weight", at::zeros({4, 3, 14, 14})}});
  EXPECT_NE(expert_error(dir + "/oc.safetensors", fx("config.json")).find("open_clip"), std::string::npos);
  EXPECT_NE(expert_error(dir + "/nothing.pt", fx("config.json")).find("not found"), std::string::npos);
}

TEST(EvaClipWeights, MissingAndUnexpectedTensorsAreNamed) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto dir = testkit::make_temp_dir("eva_w");
  auto all = fixture_tensors(f);
  std::vector<std::pair<std::string, at::Tensor>> missing;
  for (auto& [n, t] : all)
    if (n != "visual.blocks.1.attn.v_bias" && n != "text.ln_final.bias") missing.emplace_back(n, t);
  tensor_io::write_tensors(dir + "/missing.safetensors", missing);
  std::string msg = expert_error(dir + "/missing.safetensors", fx("config.json"));
  EXPECT_NE(msg.find("2 tensor(s) missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'visual.blocks.1.attn.v_bias'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'text.ln_final.bias'"), std::string::npos) << msg;

  auto extra = all;
  extra.emplace_back("visual.fc_norm.weight", at::ones({64}));
  tensor_io::write_tensors(dir + "/extra.safetensors", extra);
  msg = expert_error(dir + "/extra.safetensors", fx("config.json"));
  EXPECT_NE(msg.find("unexpected"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'visual.fc_norm.weight'"), std::string::npos) << msg;

  // The released size against the mini file: 62 vision blocks missing (named, counted).
  msg = expert_error(fx("weights.pt"), "");
  EXPECT_NE(msg.find("missing for an EVA-CLIP checkpoint of EVA02-CLIP-bigE-14-plus"), std::string::npos) << msg;
  // Same depth, other width: the first tensor whose shape disagrees.
  std::ofstream(dir + "/wide.json") << R"({"embed_dim": 48, "vision_cfg": {"layers": 2, "width": 128, "head_width": 16,
    "mlp_ratio": 8.571428571428571, "patch_size": 14, "eva_model_name": "eva-clip-4b-14-x", "postnorm": true},
    "text_cfg": {"width": 32, "heads": 4, "layers": 2}})";
  msg = expert_error(fx("weights.pt"), dir + "/wide.json");
  EXPECT_NE(msg.find("'visual.cls_token' has shape [1, 1, 64], expected [1, 1, 128]"), std::string::npos) << msg;
}

TEST(EvaClipWeights, ModulePrefixAndOldTextLayoutLoadLikeTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  auto dir = testkit::make_temp_dir("eva_w");
  std::vector<std::pair<std::string, at::Tensor>> module, old;
  for (auto& [n, t] : fixture_tensors(f)) {
    module.emplace_back("module." + n, t);
    // convert_to_custom_text_state_dict's input: the text tower at the top level.
    old.emplace_back(n.rfind("text.", 0) == 0 ? n.substr(5) : n, t);
  }
  tensor_io::write_torch_checkpoint(dir + "/module.pt", module);
  tensor_io::write_tensors(dir + "/old.safetensors", old);
  for (const std::string& file : {dir + "/module.pt", dir + "/old.safetensors"}) {
    experts::ExpertOptions o;
    o.weights = file;
    o.config = fx("config.json");
    auto e = make_eva_clip_expert(o);
    expect_embeddings_match(e->encode(experts::Modality::Text, f.ids()), get(f.model, "text/omnibind_embedding"),
                            f.inputs.text_names, file.c_str());
    expect_embeddings_match(e->encode(experts::Modality::Image, f.pixels()), get(f.model, "image/omnibind_embedding"),
                            f.inputs.image_names, file.c_str());
  }
}

TEST(EvaClipText, OverLongTextIsTruncatedAsTheReferenceDoesAndBadTextIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  Fixture f;
  experts::ExpertOptions o;
  o.weights = fx("weights.safetensors");
  o.config = fx("config.json");
  o.bpe_vocab = bpe();
  auto e = make_eva_clip_expert(o);
  // eva_clip.tokenize keeps [SOT] + 75 tokens and overwrites position 76 with EOT (no error).
  std::string longer = f.inputs.texts[2];
  for (int i = 0; i < 50; ++i) longer += " and again a long tail";
  at::Tensor a = e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(f.inputs.texts[2]));
  at::Tensor b = e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(longer));
  EXPECT_TRUE(at::equal(a, f.ids()[2]));
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_EQ(a[76].item<int64_t>(), 49407);
  std::string msg = error_of([&] { e->preprocess(experts::Modality::Text, experts::MediaInput::from_text("caf\xE9")); });
  EXPECT_NE(msg.find("invalid UTF-8"), std::string::npos) << msg;
  // Without --bpe: a clear message.
  o.bpe_vocab.clear();
  auto no_bpe = make_eva_clip_expert(o);
  msg = error_of([&] { no_bpe->preprocess(experts::Modality::Text, experts::MediaInput::from_text("a dog")); });
  EXPECT_NE(msg.find("--bpe"), std::string::npos) << msg;
  // Batches of the wrong shape or ids.
  EXPECT_NE(error_of([&] { e->encode(experts::Modality::Text, at::zeros({1, 76}, at::kLong)); }).find("expected int64 [B, 77]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e->encode(experts::Modality::Text, at::full({1, 77}, 49408, at::kLong)); }).find("outside"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e->encode(experts::Modality::Image, at::zeros({1, 3, 32, 32})); }).find("expected [B, 3, 224, 224]"),
            std::string::npos);
}
