// HTSAT tower + projection MLP parity against the reference's own outputs (random weights at
// reduced widths, official structure and keys): wavcaps_mini (WavCaps HTSAT, every audio item),
// clap_mini/fusion (HTSAT-tiny with AFF-2D fusion, short and > 10 s items) and clap_mini/base
// (HTSAT-base). Inputs are the fixtures' log-mel tensors; the front ends are tested elsewhere.
// Embeddings: cosine >= 0.99999 and max abs <= 1e-4; intermediates: max |diff| <= 1e-4 x max |want|.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/experts/htsat/htsat_config.h"
#include "omnibind/experts/htsat/htsat_model.h"
#include "omnibind/experts/htsat/projection_mlp.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::experts;
using namespace omnibind::experts::htsat;
namespace tio = omnibind::tensor_io;

double cosine(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.flatten().to(at::kDouble), y = b.flatten().to(at::kDouble);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}
double max_abs(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}
double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return max_abs(got, want) / want.to(at::kDouble).abs().max().item<double>();
}

// Worst case over the comparisons of one check, printed for the record.
struct Worst {
  double cos = 1, abs = 0, rel = 0;
  void print(const std::string& what) const {
    std::cout << std::setprecision(9) << "[ measured ] " << what << ": embeddings min cosine " << cos << ", max abs " << abs
              << "; intermediates max rel " << rel << std::endl;
  }
};
Worst g_worst;

// Intermediate activation: shapes equal, max |diff| <= 1e-4 x max |want|.
void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double r = max_rel(got, want);
  g_worst.rel = std::max(g_worst.rel, r);
  EXPECT_LE(r, 1e-4) << what << " (max abs " << max_abs(got, want) << ")";
}
// Embedding: cosine >= 0.99999 and max abs <= 1e-4.
void expect_embedding(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double c = cosine(got, want), a = max_abs(got, want);
  g_worst.cos = std::min(g_worst.cos, c);
  g_worst.abs = std::max(g_worst.abs, a);
  EXPECT_GE(c, 0.99999) << what;
  EXPECT_LE(a, 1e-4) << what;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

struct Expected {
  tio::SafetensorsFile file;
  at::Tensor operator()(const std::string& key) const { return tio::to_tensor(file.tensors.at(key)).to(at::kFloat); }
  at::Tensor raw(const std::string& key) const { return tio::to_tensor(file.tensors.at(key)); }
};

// The tower and its audio projection loaded from one checkpoint file.
struct Loaded {
  std::unique_ptr<tio::StateDict> sd;
  std::unique_ptr<WeightSource> root;
  HtsatConfig config;
  HtsatModel model;
  ProjectionMlp proj;
  std::string tower_prefix;
};

Loaded load(const std::string& dir, const std::string& file, const std::string& family, const std::string& tower,
            const std::string& proj, at::ScalarType dtype = at::kFloat) {
  Loaded l;
  l.config = htsat_config_from_json_file(dir + "/config.json");
  l.sd = std::make_unique<tio::StateDict>(tio::load_checkpoint(dir + "/" + file));
  // CLAP's training checkpoints keep DDP's "module." on every key (the reference strips it).
  const std::string module = l.sd->contains("module." + tower + "bn0.weight") ? "module." : "";
  l.root = std::make_unique<WeightSource>(*l.sd, at::kFloat, family, module);
  l.tower_prefix = module + tower;
  l.model = HtsatModel::load(l.root->sub(tower), l.config, dtype);
  l.proj = ProjectionMlp::load(*l.root, proj, l.config.num_features(), l.config.proj_dim, l.config.proj_dim, dtype);
  return l;
}

// Every tensor of the tower that the model does not read is a front-end constant or an unused head.
void expect_tower_keys_covered(const Loaded& l, const std::vector<std::string>& other_parts) {
  std::vector<std::string> ignored = other_parts;
  for (const auto& p : HtsatModel::unused_key_prefixes()) ignored.push_back(l.tower_prefix + p);
  for (const auto& p : HtsatModel::front_end_key_prefixes()) ignored.push_back(l.tower_prefix + p);
  EXPECT_NO_THROW(l.root->require_all_used(ignored));
}

// ---------------------------------------------------------------- WavCaps

std::string wavcaps(const std::string& rel) { return testkit::shared_path("fixtures/wavcaps_mini/" + rel); }

void check_wavcaps(const std::string& weights) {
  g_worst = Worst{};
  Loaded l = load(wavcaps(""), weights, "WavCaps", "audio_encoder.audio_enc.", "audio_proj.");
  EXPECT_EQ(l.config.embed_dim, 16);
  EXPECT_EQ(l.config.num_features(), 128);
  expect_tower_keys_covered(l, {"text_encoder.", "text_proj.", "temp"});
  Expected e{tio::read_safetensors(wavcaps("expected_audio.safetensors"))};
  Expected m{tio::read_safetensors(wavcaps("expected_model.safetensors"))};
  auto inputs = read_json(wavcaps("inputs.json"));
  std::vector<std::string> names;
  for (const auto& a : inputs["audio"]) names.push_back(a["name"].get<std::string>());
  ASSERT_EQ(names.size(), 7u);
  std::vector<at::Tensor> mels;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string k = "audio/" + names[i] + "/";
    at::Tensor mel = e(k + "logmel").view({1, 1, 1001, 64});
    mels.push_back(mel);
    HtsatStages st;
    at::Tensor emb = l.model.forward(mel, {}, &st);
    expect_close(st.model_input[0][0], e(k + "model_input"), names[i] + " model_input");
    expect_embedding(emb[0], e(k + "htsat_embedding"), names[i] + " htsat_embedding");
    at::Tensor p = l.proj.forward(emb);
    expect_embedding(p[0], e(k + "audio_proj"), names[i] + " audio_proj");
    at::Tensor n = l2_normalize(p);
    expect_embedding(n[0], e(k + "encode_audio"), names[i] + " encode_audio");
    expect_embedding(l2_normalize(n)[0], e(k + "emb_audios"), names[i] + " emb_audios");
    expect_embedding(l2_normalize(n)[0], m("model/audio_embeds")[i], names[i] + " model/audio_embeds");
    if (i == 0) {  // item 0 carries every intermediate
      expect_close(st.bn0_out[0][0], e(k + "bn0_out"), "bn0_out");
      expect_close(st.patch_embed[0], e(k + "patch_embed"), "patch_embed");
      ASSERT_EQ(st.layer_out.size(), 4u);
      for (int s = 0; s < 4; ++s)
        expect_close(st.layer_out[s][0], e(k + "layer" + std::to_string(s)), "layer" + std::to_string(s));
      expect_close(st.final_norm[0], e(k + "final_norm"), "final_norm");
    }
  }
  // One batch of all seven gives the same embeddings.
  at::Tensor batch = l2_normalize(l2_normalize(l.proj.forward(l.model.forward(at::cat(mels, 0)))));
  for (size_t i = 0; i < names.size(); ++i)
    expect_embedding(batch[i], m("model/audio_embeds")[i], names[i] + " batched");
  g_worst.print("wavcaps_mini " + weights);
}

TEST(HtsatParity, WavcapsEveryItemSafetensors) {
  OMNIBIND_REQUIRE_SHARED();
  check_wavcaps("weights.safetensors");
}

TEST(HtsatParity, WavcapsEveryItemTorchCheckpoint) {
  OMNIBIND_REQUIRE_SHARED();
  check_wavcaps("weights.pt");  // {'model': state_dict, 'optimizer', 'config', 'epoch'}
}

// ---------------------------------------------------------------- CLAP

std::string clap(const std::string& rel) { return testkit::shared_path("fixtures/clap_mini/" + rel); }

struct ClapBatch {
  std::vector<std::string> names;
  at::Tensor mel;            // [7, C, 1001, 64]
  std::vector<bool> longer;  // fusion only
};

// CLAP_G model input per item (get_audio_features, data_truncating='fusion'): 4 copies of the
// 1001-frame mel, or for longer items [Resize(whole mel), mel[s_k : s_k + 1001] for the recorded starts].
ClapBatch fusion_inputs(const Expected& a, const Expected& m) {
  ClapBatch b;
  auto inputs = read_json(clap("fusion/inputs.json"));
  at::Tensor longer = m.raw("audio/longer");
  std::vector<at::Tensor> items;
  for (const auto& it : inputs["audio"]) {
    const std::string name = it["name"].get<std::string>();
    const bool is_longer = it["longer"].get<bool>();
    b.names.push_back(name);
    EXPECT_EQ(longer[static_cast<int64_t>(b.longer.size())].item<int64_t>(), is_longer ? 1 : 0) << name;
    b.longer.push_back(is_longer);
    at::Tensor mel = a(name + "/mel");
    if (!is_longer) {
      EXPECT_EQ(mel.size(0), 1001) << name;
      items.push_back(mel.unsqueeze(0).expand({4, 1001, 64}));
    } else {
      std::vector<at::Tensor> ch = {a(name + "/mel_shrink")};
      for (const auto& s : it["fusion_chunk_starts"]) ch.push_back(mel.narrow(0, s.get<int64_t>(), 1001));
      items.push_back(at::stack(ch));
    }
  }
  b.mel = at::stack(items).contiguous();
  return b;
}

void check_clap_outputs(const Loaded& l, const at::Tensor& emb, const Expected& m, const ClapBatch& b) {
  at::Tensor p = l.proj.forward(emb), n = l2_normalize(p);
  for (size_t i = 0; i < b.names.size(); ++i) {
    expect_embedding(emb[i], m("audio/embedding")[i], b.names[i] + " embedding");
    expect_embedding(p[i], m("audio/projected")[i], b.names[i] + " projected");
    expect_embedding(n[i], m("audio/normalized")[i], b.names[i] + " normalized");
    expect_embedding(l2_normalize(n)[i], m("audio/omnibind")[i], b.names[i] + " omnibind");
  }
}

// Per-item intermediates of rows items_with_intermediates (bn0/reshape only for the second one).
void check_clap_stages(const HtsatStages& st, const Expected& m) {
  at::Tensor rows = m.raw("audio/items_with_intermediates");
  const int64_t second = rows[1].item<int64_t>();
  expect_close(st.bn0_out.narrow(0, second, 1), m("audio/bn0_out"), "bn0_out");
  expect_close(st.model_input.narrow(0, second, 1), m("audio/reshape_wav2img_out"), "reshape_wav2img_out");
  expect_close(st.patch_embed_proj.index_select(0, rows), m("audio/patch_embed_proj_out"), "patch_embed_proj_out");
  expect_close(st.patch_embed.index_select(0, rows), m("audio/patch_embed_out"), "patch_embed_out");
  ASSERT_EQ(st.layer_out.size(), 4u);
  for (int s = 0; s < 4; ++s)
    expect_close(st.layer_out[s].index_select(0, rows), m("audio/layer" + std::to_string(s) + "_out"),
                 "layer" + std::to_string(s) + "_out");
  expect_close(st.final_norm.index_select(0, rows), m("audio/norm_out"), "norm_out");
}

void check_clap_fusion(const std::string& weights) {
  g_worst = Worst{};
  Loaded l = load(clap("fusion"), weights, "CLAP", "audio_branch.", "audio_projection.");
  EXPECT_TRUE(l.config.fusion);
  EXPECT_EQ(l.config.num_features(), 64);
  EXPECT_EQ(l.config.proj_dim, 32);
  const std::string mod = l.tower_prefix.substr(0, l.tower_prefix.size() - std::string("audio_branch.").size());
  expect_tower_keys_covered(l, {mod + "text_branch.", mod + "text_projection.", mod + "text_transform.",
                                mod + "audio_transform.", mod + "logit_scale_"});
  Expected a{tio::read_safetensors(clap("fusion/expected_audio.safetensors"))};
  Expected m{tio::read_safetensors(clap("fusion/expected_model.safetensors"))};
  ClapBatch b = fusion_inputs(a, m);
  HtsatStages st;
  at::Tensor emb = l.model.forward(b.mel, b.longer, &st);
  check_clap_outputs(l, emb, m, b);
  check_clap_stages(st, m);
  // The AFF path, for the longer items (longer_idx order).
  expect_close(st.mel_conv2d_out, m("audio/patch_embed_mel_conv2d_out"), "patch_embed_mel_conv2d_out");
  expect_close(st.fusion_out, m("audio/patch_embed_fusion_model_out"), "patch_embed_fusion_model_out");
  // Each item alone (a batch of one: the AFF BatchNorm duplication in the reference) agrees too.
  for (int64_t i = 0; i < b.mel.size(0); ++i) {
    at::Tensor one = l.model.forward(b.mel.narrow(0, i, 1), {b.longer[i]});
    expect_embedding(one[0], m("audio/embedding")[i], b.names[i] + " alone");
  }
  g_worst.print("clap_mini/fusion " + weights);
}

TEST(HtsatParity, ClapFusionEveryItemSafetensors) {
  OMNIBIND_REQUIRE_SHARED();
  check_clap_fusion("weights.safetensors");
}

TEST(HtsatParity, ClapFusionEveryItemTorchCheckpointWithModulePrefix) {
  OMNIBIND_REQUIRE_SHARED();
  check_clap_fusion("weights.pt");
}

void check_clap_base(const std::string& weights) {
  g_worst = Worst{};
  Loaded l = load(clap("base"), weights, "CLAP", "audio_branch.", "audio_projection.");
  EXPECT_FALSE(l.config.fusion);
  EXPECT_EQ(l.config.num_features(), 96);
  const std::string mod = l.tower_prefix.substr(0, l.tower_prefix.size() - std::string("audio_branch.").size());
  expect_tower_keys_covered(l, {mod + "text_branch.", mod + "text_projection.", mod + "text_transform.",
                                mod + "audio_transform.", mod + "logit_scale_"});
  Expected a{tio::read_safetensors(clap("base/expected_audio.safetensors"))};
  Expected m{tio::read_safetensors(clap("base/expected_model.safetensors"))};
  ClapBatch b;
  std::vector<at::Tensor> items;
  const nlohmann::json inputs = read_json(clap("base/inputs.json"));
  for (const auto& it : inputs["audio"]) {
    b.names.push_back(it["name"].get<std::string>());
    items.push_back(a(b.names.back() + "/logmel_torchlibrosa").unsqueeze(0));
  }
  b.mel = at::stack(items);  // [7, 1, 1001, 64]
  HtsatStages st;
  at::Tensor emb = l.model.forward(b.mel, {}, &st);
  check_clap_outputs(l, emb, m, b);
  check_clap_stages(st, m);
  g_worst.print("clap_mini/base " + weights);
}

TEST(HtsatParity, ClapBaseEveryItemSafetensors) {
  OMNIBIND_REQUIRE_SHARED();
  check_clap_base("weights.safetensors");
}

TEST(HtsatParity, ClapBaseEveryItemTorchCheckpointWithModulePrefix) {
  OMNIBIND_REQUIRE_SHARED();
  check_clap_base("weights.pt");
}

// ---------------------------------------------------------------- structure, bf16, errors

// Without the stored relative_position_index / attn_mask buffers the model builds them as Swin
// does: the outputs are identical (the buffers the fixtures store are the constructed ones).
TEST(HtsatParity, BuiltMasksAndIndicesEqualStoredBuffers) {
  OMNIBIND_REQUIRE_SHARED();
  for (const std::string dir : {"fusion", "base"}) {
    auto full = tio::load_checkpoint(clap(dir + "/weights.safetensors"));
    tio::StateDict stripped("stripped");
    size_t dropped = 0;
    for (const auto& n : full.names()) {
      const bool buffer = n.find("attn_mask") != std::string::npos || n.find("relative_position_index") != std::string::npos;
      if (buffer) ++dropped;
      else stripped.add(n, full.at(n));
    }
    EXPECT_GT(dropped, 8u);
    HtsatConfig c = htsat_config_from_json_file(clap(dir + "/config.json"));
    HtsatModel a = HtsatModel::load(WeightSource(full, at::kFloat, "CLAP", "audio_branch."), c);
    HtsatModel b = HtsatModel::load(WeightSource(stripped, at::kFloat, "CLAP", "audio_branch."), c);
    for (size_t i = 0; i < a.layers.size(); ++i)
      for (size_t j = 0; j < a.layers[i].blocks.size(); ++j) {
        const auto& x = a.layers[i].blocks[j];
        const auto& y = b.layers[i].blocks[j];
        EXPECT_TRUE(at::equal(x.attn.relative_position_index, y.attn.relative_position_index)) << dir << " " << i << "." << j;
        EXPECT_EQ(x.attn_mask.defined(), y.attn_mask.defined()) << dir << " " << i << "." << j;
        if (x.attn_mask.defined()) EXPECT_TRUE(at::equal(x.attn_mask, y.attn_mask)) << dir << " " << i << "." << j;
        EXPECT_EQ(x.shift, (j % 2 == 1 && i + 1 < a.layers.size()) ? 4 : 0);
      }
  }
}

TEST(HtsatParity, Bf16MatchesFp32) {
  OMNIBIND_REQUIRE_SHARED();
  double worst = 1;
  // WavCaps, item by item.
  Loaded f = load(wavcaps(""), "weights.safetensors", "WavCaps", "audio_encoder.audio_enc.", "audio_proj.");
  Loaded h = load(wavcaps(""), "weights.safetensors", "WavCaps", "audio_encoder.audio_enc.", "audio_proj.", at::kBFloat16);
  EXPECT_EQ(h.model.layers[0].blocks[0].attn.qkv.weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(h.model.norm.weight.scalar_type(), at::kFloat);
  Expected e{tio::read_safetensors(wavcaps("expected_audio.safetensors"))};
  for (const std::string name : {"train", "dog_audio", "fsdd_0_george_0", "float_32k"}) {
    at::Tensor mel = e("audio/" + name + "/logmel").view({1, 1, 1001, 64});
    at::Tensor a = l2_normalize(f.proj.forward(f.model.forward(mel)));
    at::Tensor b = l2_normalize(h.proj.forward(h.model.forward(mel)));
    EXPECT_EQ(b.scalar_type(), at::kFloat);
    worst = std::min(worst, cosine(a, b));
    EXPECT_GE(cosine(a, b), 0.999) << "wavcaps " << name;
  }
  // CLAP fusion, the whole batch (AFF path included).
  Loaded cf = load(clap("fusion"), "weights.safetensors", "CLAP", "audio_branch.", "audio_projection.");
  Loaded ch = load(clap("fusion"), "weights.safetensors", "CLAP", "audio_branch.", "audio_projection.", at::kBFloat16);
  Expected a{tio::read_safetensors(clap("fusion/expected_audio.safetensors"))};
  Expected m{tio::read_safetensors(clap("fusion/expected_model.safetensors"))};
  ClapBatch b = fusion_inputs(a, m);
  at::Tensor x = l2_normalize(cf.proj.forward(cf.model.forward(b.mel, b.longer)));
  at::Tensor y = l2_normalize(ch.proj.forward(ch.model.forward(b.mel, b.longer)));
  std::cout << std::setprecision(9) << "[ measured ] bf16 vs fp32 wavcaps min cosine " << worst;
  worst = 1;
  for (int64_t i = 0; i < x.size(0); ++i) {
    worst = std::min(worst, cosine(x[i], y[i]));
    EXPECT_GE(cosine(x[i], y[i]), 0.999) << "clap fusion " << b.names[i];
  }
  std::cout << ", clap fusion min cosine " << worst << std::endl;
}

TEST(HtsatParity, ConfigsFromFixturesAndPresets) {
  OMNIBIND_REQUIRE_SHARED();
  HtsatConfig w = htsat_config_from_json_file(wavcaps("config.json"));
  EXPECT_EQ(w.embed_dim, 16);
  EXPECT_EQ(w.depths, (std::vector<int64_t>{2, 2, 6, 2}));
  EXPECT_EQ(w.heads, (std::vector<int64_t>{2, 4, 8, 16}));
  EXPECT_EQ(w.proj_dim, 48);
  EXPECT_FALSE(w.fusion);
  HtsatConfig f = htsat_config_from_json_file(clap("fusion/config.json"));
  EXPECT_EQ(f.embed_dim, 8);
  EXPECT_EQ(f.heads, (std::vector<int64_t>{1, 2, 2, 4}));
  EXPECT_TRUE(f.fusion);
  EXPECT_EQ(f.in_channels(), 4);
  HtsatConfig b = htsat_config_from_json_file(clap("base/config.json"));
  EXPECT_EQ(b.embed_dim, 12);
  EXPECT_EQ(b.heads, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_FALSE(b.fusion);
}

TEST(HtsatConfig, ReleasedPresets) {
  HtsatConfig w = htsat_preset("wavcaps");
  EXPECT_EQ(w.num_features(), 768);
  EXPECT_EQ(w.proj_dim, 1024);
  HtsatConfig t = htsat_preset("clap-fusion");
  EXPECT_TRUE(t.fusion);
  EXPECT_EQ(t.num_features(), 768);
  EXPECT_EQ(t.proj_dim, 512);
  HtsatConfig b = htsat_preset("clap-base");
  EXPECT_EQ(b.num_features(), 1024);
  EXPECT_EQ(b.depths, (std::vector<int64_t>{2, 2, 12, 2}));
  EXPECT_NE(testkit::input_error_of([] { htsat_preset("huge"); }).find("unknown HTSAT preset"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([] { htsat_config_from_json(R"({"embed_dim": 10, "heads": [4, 8, 16, 32]})", "c.json"); })
                .find("c.json: invalid HTSAT config"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([] {
              htsat_config_from_json(R"({"amodel": "HTSAT-tiny", "model_cfg": {"enable_fusion": true, "fusion_type": "iaff_2d"}})",
                                     "c.json");
            }).find("iaff_2d"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([] { htsat_config_from_json("[1, 2", "c.json"); }).find("not valid JSON"), std::string::npos);
}

// Random weights at a small width: runs, is finite, and rejects wrong inputs with one clear line.
TEST(HtsatModel, RandomWeightsAndBadInputs) {
  HtsatConfig c = htsat_preset("clap-fusion");
  c.embed_dim = 8;
  c.heads = {1, 1, 2, 2};
  c.depths = {2, 2, 2, 2};
  HtsatModel m = HtsatModel::load(WeightSource::random(at::kFloat, 3), c);
  at::manual_seed(0);
  at::Tensor mel = at::randn({2, 4, 1001, 64}) * 10 - 40;
  at::Tensor e = m.forward(mel, {true, false});
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_TRUE(at::isfinite(e).all().item<bool>());
  // Shift masks of the 64x64, 32x32, 16x16 stages; none at 8x8.
  EXPECT_TRUE(m.layers[0].blocks[1].attn_mask.defined());
  EXPECT_EQ(m.layers[0].blocks[1].attn_mask.size(0), 64);
  EXPECT_FALSE(m.layers[3].blocks[1].attn_mask.defined());
  EXPECT_EQ(m.layers[3].blocks[1].shift, 0);
  EXPECT_NE(testkit::input_error_of([&] { m.forward(at::zeros({1, 1, 1001, 64})); }).find("expects a log-mel"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { m.forward(at::zeros({1, 4, 1100, 64})); }).find("expects a log-mel"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { m.forward(mel, {true}); }).find("'longer' flags"), std::string::npos);
  // A checkpoint of the wrong width names the tensor.
  tio::StateDict sd("other.safetensors");
  sd.add("bn0.weight", tio::from_tensor(at::ones({32})));
  EXPECT_NE(testkit::input_error_of([&] { HtsatModel::load(WeightSource(sd, at::kFloat, "WavCaps"), c); }).find("bn0.weight"),
            std::string::npos);
}

}  // namespace
