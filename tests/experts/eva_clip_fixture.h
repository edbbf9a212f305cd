// Test helper: an EVA-CLIP parity fixture folder (eva02_clip_mini, eva_clip_18b_mini) loaded once:
// the reference's weights, expected tensors, inputs and model config, and the model built from them.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "experts/clip_fixture_support.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::testkit {

struct EvaClipFixture {
  std::string dir;  // shared/fixtures/<name>
  tensor_io::SafetensorsFile weights, model, vision, text;
  experts::eva_clip::EvaClipConfig config;
  clipfx::FixtureInputs inputs;
  explicit EvaClipFixture(const std::string& name)
      : dir(shared_path("fixtures/" + name)),
        weights(tensor_io::read_safetensors(dir + "/weights.safetensors")),
        model(tensor_io::read_safetensors(dir + "/expected_model.safetensors")),
        vision(tensor_io::read_safetensors(dir + "/expected_vision.safetensors")),
        text(tensor_io::read_safetensors(dir + "/expected_text.safetensors")),
        config(experts::eva_clip::load_config(dir + "/config.json")),
        inputs(dir) {}
  std::string file(const std::string& rel) const { return dir + "/" + rel; }
  static std::string bpe() { return shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"); }
  // Every image's reference pixel tensor, [N, 3, 224, 224].
  at::Tensor pixels() const {
    std::vector<at::Tensor> v;
    for (const auto& n : inputs.image_names) v.push_back(clipfx::get(vision, n + "/pixel_values"));
    return at::stack(v);
  }
  at::Tensor ids() const { return clipfx::get(text, "token_ids"); }
  experts::eva_clip::EvaClipModel load(at::ScalarType dtype) const {
    return experts::eva_clip::EvaClipModel::load(config, experts::WeightSource(weights.tensors, dtype, "EVA-CLIP"));
  }
  // Item 0's intermediates of a vision / text forward against "vision/item0/*" / "text/item0/*"
  // (max rel <= 1e-5): every stage the fixture gives.
  void expect_vision_stages(const experts::eva_clip::EvaVisionStages& st) const {
    std::vector<std::pair<std::string, at::Tensor>> s = {
        {"patch_embed", st.patch_embed[0]},   {"tokens_in", st.tokens_in[0]}, {"block0_attn", st.block0_attn[0]},
        {"block0_norm1", st.block0_norm1[0]}, {"block0_mlp", st.block0_mlp[0]}, {"block0_norm2", st.block0_norm2[0]},
        {"block0_out", st.block_out.front()[0]}, {"last_block_out", st.block_out.back()[0]},
        {"final_norm", st.final_norm[0]},     {"pooled", st.pooled[0]}};
    if (model.tensors.contains("vision/item0/block0_fc1")) s.emplace_back("block0_fc1", st.block0_fc1[0]);
    clipfx::expect_stages_match(s, model, "vision/item0/");
  }
  void expect_text_stages(const experts::vit::ClipTextStages& st) const {
    clipfx::expect_stages_match({{"token_embedding", st.token_embedding[0]},
                                 {"block0_out", st.block_out.front()[0]},
                                 {"last_block_out", st.block_out.back()[0]},
                                 {"ln_final", st.ln_final[0]},
                                 {"pooled", st.pooled[0]}},
                                model, "text/item0/");
  }
  // The model on every reference pixel tensor: item 0's intermediates, the features (max rel <= 1e-5)
  // and OmniBind's embeddings (cosine / max abs bar) against the fixture. Returns the features.
  at::Tensor expect_vision_parity(const experts::eva_clip::EvaClipModel& m) const {
    experts::eva_clip::EvaVisionStages st;
    at::Tensor feats = m.encode_image(pixels(), &st);
    expect_vision_stages(st);
    EXPECT_LE(clipfx::max_rel(feats, clipfx::get(model, "image/features")), 1e-5);
    clipfx::expect_embeddings_match(experts::eva_clip::omnibind_normalize(feats), clipfx::get(model, "image/omnibind_embedding"),
                                    inputs.image_names, "image fp32");
    return feats;
  }
  // The same for the text tower on ids [N, 77] against "<group>/features" and "<group>/omnibind_embedding"
  // (item 0's intermediates checked for the 77-token ids only: the fixture's "text/item0/*").
  at::Tensor expect_text_parity(const experts::eva_clip::EvaClipModel& m, const at::Tensor& token_ids,
                                const std::string& group = "text") const {
    experts::vit::ClipTextStages st;
    at::Tensor feats = m.encode_text(token_ids, &st);
    if (group == "text") {
      expect_text_stages(st);
      EXPECT_TRUE(at::equal(st.pool_index, clipfx::get(text, "argmax_index")));
    }
    EXPECT_LE(clipfx::max_rel(feats, clipfx::get(model, group + "/features")), 1e-5) << group;
    clipfx::expect_embeddings_match(experts::eva_clip::omnibind_normalize(feats),
                                    clipfx::get(model, group + "/omnibind_embedding"), inputs.text_names,
                                    (group + " fp32").c_str());
    return feats;
  }
  // The state dict as at::Tensors, in the file's order.
  std::vector<std::pair<std::string, at::Tensor>> tensors() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& n : weights.tensors.names()) out.emplace_back(n, tensor_io::to_tensor(weights.tensors.at(n)));
    return out;
  }
};

}  // namespace omnibind::testkit
