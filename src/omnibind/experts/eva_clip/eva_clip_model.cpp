#include "omnibind/experts/eva_clip/eva_clip_model.h"

#include <ATen/ATen.h>

#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::eva_clip {

using Kind = WeightSource::Kind;

vit::BlockSpec EvaVisionTower::block_spec(const EvaVisionConfig& c, EvaKeyLayout layout) {
  vit::BlockSpec s;
  s.attn.dim = c.width;
  s.attn.heads = c.heads();
  s.attn.scale_after_matmul = false;  // q * head_dim^-0.5, then q @ k^T
  s.mlp_hidden = c.mlp_hidden();
  s.act = vit::Activation::GeluErf;
  s.norm = c.postnorm ? vit::NormPlacement::Post : vit::NormPlacement::Pre;
  s.rms_norm = c.use_rms_norm;  // RMSnorm (18B) or LayerNorm (bigE), both eps 1e-6
  s.eps = c.ln_eps;
  s.fc1_name = "fc1";
  s.fc2_name = "fc2";
  s.mlp_name = "mlp";
  if (layout == EvaKeyLayout::HuggingFace) {
    // EvaCLIPEncoderLayer: separate q/k/v projections (biases only with qkv_bias; never on k).
    s.attn.layout = vit::QkvLayout::Separate;
    s.attn.qv_bias = c.qkv_bias;
    s.attn.k_bias = false;
    s.attn.out_name = "out_proj";
    s.attn_name = "self_attn";
    s.norm1_name = "layer_norm1";
    s.norm2_name = "layer_norm2";
    return s;
  }
  // qkv.weight (no bias) + q_bias, v_bias (bigE), or qkv.weight alone (18B, qkv_bias: false).
  s.attn.layout = c.qkv_bias ? vit::QkvLayout::FusedQV : vit::QkvLayout::Fused;
  s.attn.qkv_name = "qkv";
  s.attn.out_name = "proj";
  s.attn_name = "attn";
  s.norm1_name = "norm1";
  s.norm2_name = "norm2";
  return s;
}

std::string EvaVisionTower::block_prefix(int64_t index, EvaKeyLayout layout) {
  return (layout == EvaKeyLayout::HuggingFace ? "vision_model.encoder.layers." : "visual.blocks.") +
         std::to_string(index);
}

EvaVisionTower EvaVisionTower::load(const WeightSource& root, const EvaVisionConfig& c, int64_t embed_dim,
                                    EvaKeyLayout layout, bool with_blocks) {
  EvaVisionTower t;
  t.config = c;
  t.layout = layout;
  const int64_t W = c.width;
  auto load_norm = [&](vit::LayerNorm& n, const std::string& name) {
    if (c.use_rms_norm) n.load_rms(root, name, W, c.ln_eps);
    else n.load(root, name, W, c.ln_eps);
  };
  if (layout == EvaKeyLayout::HuggingFace) {
    const std::string e = "vision_model.embeddings.";
    t.cls_token = root.get(e + "class_embedding", {W}, Kind::Embedding).to(at::kFloat).view({1, 1, W});
    t.patch_embed.load(root, e + "patch_embedding", 3, W, c.patch_size, /*has_bias=*/true);
    t.pos_embed = root.get(e + "position_embedding.weight", {c.tokens(), W}, Kind::Embedding).to(at::kFloat)
                      .view({1, c.tokens(), W});
  } else {
    // State-dict order, so a foreign checkpoint is reported by its first missing key.
    t.cls_token = root.get("visual.cls_token", {1, 1, W}, Kind::Embedding).to(at::kFloat);
    t.pos_embed = root.get("visual.pos_embed", {1, c.tokens(), W}, Kind::Embedding).to(at::kFloat);
    t.patch_embed.load(root, "visual.patch_embed.proj", 3, W, c.patch_size, /*has_bias=*/true);
  }
  if (with_blocks) {
    t.blocks.blocks.reserve(static_cast<size_t>(c.layers));
    for (int64_t i = 0; i < c.layers; ++i) t.blocks.blocks.push_back(t.load_block(root, i));
  }
  if (layout == EvaKeyLayout::HuggingFace) {
    load_norm(t.norm, "vision_model.post_layernorm");
    // The hub port builds visual_projection as a Linear with bias; the official head has none.
    const bool head_bias = c.qkv_bias || root.has("visual_projection.bias");
    t.head.load(root, "visual_projection", W, embed_dim, head_bias);
  } else {
    load_norm(t.norm, "visual.norm");
    t.head.load(root, "visual.head", W, embed_dim, /*has_bias=*/c.qkv_bias);  // nn.Linear(bias=qkv_bias)
  }
  return t;
}

EvaVisionBlock EvaVisionTower::load_block(const WeightSource& root, int64_t index) const {
  EvaVisionBlock b;
  b.load(root, block_prefix(index, layout), block_spec(config, layout));
  return b;
}

at::Tensor EvaVisionTower::embed_patches(const at::Tensor& pixels, EvaVisionStages* stages) const {
  at::Tensor patches = patch_embed.forward(pixels.to(at::kFloat));  // [B, N, W]
  const int64_t B = patches.size(0);
  at::Tensor x = at::cat({cls_token.expand({B, 1, config.width}), patches}, 1) + pos_embed;  // [B, T, W]
  // pos_drop (p=0), patch_dropout (0 -> Identity), rel_pos_bias (None): nothing to do.
  if (stages) {
    stages->patch_embed = patches;
    stages->tokens_in = x;
  }
  return x;
}

at::Tensor EvaVisionTower::run_block(const EvaVisionBlock& block, const at::Tensor& x) { return block.forward(x); }

at::Tensor EvaVisionTower::finish(const at::Tensor& x, EvaVisionStages* stages) const {
  // visual.norm is per token, so norming only the class token gives the same pooled row.
  at::Tensor pooled;
  if (stages) {
    stages->final_norm = norm.forward(x);
    pooled = stages->final_norm.select(1, 0);
    stages->pooled = pooled;
  } else {
    pooled = norm.forward(x.select(1, 0));
  }
  return head.forward(pooled);
}

at::Tensor EvaVisionTower::forward(const at::Tensor& pixels, EvaVisionStages* stages) const {
  at::Tensor x = embed_patches(pixels, stages);
  if (stages && !blocks.blocks.empty()) {
    const vit::Block& b0 = blocks.blocks.front();
    if (b0.placement == vit::NormPlacement::Post) {
      stages->block0_attn = b0.attn.forward(x);
      stages->block0_norm1 = b0.norm1.forward(stages->block0_attn);
      at::Tensor x1 = x + stages->block0_norm1;
      stages->block0_fc1 = b0.mlp.fc1.forward(x1);
      stages->block0_mlp = b0.mlp.forward(x1);
      stages->block0_norm2 = b0.norm2.forward(stages->block0_mlp);
    }
  }
  for (const auto& b : blocks.blocks) {
    x = run_block(b, x);
    if (stages) stages->block_out.push_back(x);
  }
  return finish(x, stages);
}

vit::ClipTextConfig EvaClipModel::text_config(const EvaClipConfig& c) {
  vit::ClipTextConfig t;
  t.vocab_size = c.text.vocab_size;
  t.context_length = c.text.context_length;
  t.width = c.text.width;
  t.heads = c.text.heads;
  t.layers = c.text.layers;
  t.mlp_hidden = c.text.mlp_hidden();
  t.embed_dim = c.embed_dim;
  t.act = vit::Activation::GeluErf;  // quick_gelu is false for EVA
  t.eps = c.text.ln_eps;
  return t;
}

EvaClipModel EvaClipModel::load(const EvaClipConfig& c, const WeightSource& root, const std::string& text_prefix,
                                const std::string& logit_scale_key, unsigned towers, EvaKeyLayout layout) {
  c.validate();
  EvaClipModel m;
  m.config = c;
  m.logit_scale = root.get(logit_scale_key, {}, Kind::Scalar).item<float>();
  if (towers & kVision) m.visual = EvaVisionTower::load(root, c.vision, c.embed_dim, layout);
  if (towers & kText) {
    vit::ClipTextConfig tc = text_config(c);
    tc.hf_layout = layout == EvaKeyLayout::HuggingFace;  // names from the root ("text_model.*", "text_projection")
    m.text = vit::ClipTextTower::load(tc.hf_layout ? root : root.sub(text_prefix), tc);
  }
  return m;
}

at::Tensor EvaClipModel::encode_image(const at::Tensor& pixels, EvaVisionStages* stages) const {
  return visual.forward(pixels, stages);
}

at::Tensor EvaClipModel::encode_text(const at::Tensor& ids, vit::ClipTextStages* stages) const {
  return text.forward(ids, stages);
}

at::Tensor omnibind_normalize(const at::Tensor& features) {
  at::Tensor x = features.to(at::kFloat);
  x = x / x.norm(2, {-1}, true);                // emb_images / emb_texts
  return x / x.norm(2, {-1}, true).clamp_min(1e-12);  // F.normalize(x, dim=-1)
}

}  // namespace omnibind::experts::eva_clip
