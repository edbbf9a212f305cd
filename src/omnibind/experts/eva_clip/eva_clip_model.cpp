#include "omnibind/experts/eva_clip/eva_clip_model.h"

#include <ATen/ATen.h>

#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::eva_clip {

using Kind = WeightSource::Kind;

vit::BlockSpec EvaVisionTower::block_spec(const EvaVisionConfig& c) {
  vit::BlockSpec s;
  s.attn.dim = c.width;
  s.attn.heads = c.heads();
  s.attn.layout = vit::QkvLayout::FusedQV;  // qkv.weight (no bias) + q_bias, v_bias
  s.attn.scale_after_matmul = false;        // q * head_dim^-0.5, then q @ k^T
  s.attn.qkv_name = "qkv";
  s.attn.out_name = "proj";
  s.mlp_hidden = c.mlp_hidden();
  s.act = vit::Activation::GeluErf;
  s.norm = c.postnorm ? vit::NormPlacement::Post : vit::NormPlacement::Pre;
  s.eps = c.ln_eps;
  s.norm1_name = "norm1";
  s.norm2_name = "norm2";
  s.attn_name = "attn";
  s.mlp_name = "mlp";
  s.fc1_name = "fc1";
  s.fc2_name = "fc2";
  return s;
}

EvaVisionTower EvaVisionTower::load(const WeightSource& w, const EvaVisionConfig& c, int64_t embed_dim) {
  EvaVisionTower t;
  t.config = c;
  const int64_t W = c.width;
  // State-dict order, so a foreign checkpoint is reported by its first missing key.
  t.cls_token = w.get("cls_token", {1, 1, W}, Kind::Embedding).to(at::kFloat);
  t.pos_embed = w.get("pos_embed", {1, c.tokens(), W}, Kind::Embedding).to(at::kFloat);
  t.patch_embed.load(w, "patch_embed.proj", 3, W, c.patch_size, /*has_bias=*/true);
  t.blocks.load(w, "blocks", c.layers, block_spec(c));
  t.norm.load(w, "norm", W, c.ln_eps);
  t.head.load(w, "head", W, embed_dim, /*has_bias=*/true);
  return t;
}

at::Tensor EvaVisionTower::forward(const at::Tensor& pixels, EvaVisionStages* stages) const {
  at::Tensor patches = patch_embed.forward(pixels.to(at::kFloat));  // [B, N, W]
  const int64_t B = patches.size(0);
  at::Tensor x = at::cat({cls_token.expand({B, 1, config.width}), patches}, 1) + pos_embed;  // [B, T, W]
  // pos_drop (p=0), patch_dropout (0 -> Identity), rel_pos_bias (None): nothing to do.
  if (stages) {
    stages->patch_embed = patches;
    stages->tokens_in = x;
    const vit::Block& b0 = blocks.blocks.at(0);
    if (b0.placement == vit::NormPlacement::Post) {
      stages->block0_attn = b0.attn.forward(x);
      stages->block0_norm1 = b0.norm1.forward(stages->block0_attn);
      at::Tensor x1 = x + stages->block0_norm1;
      stages->block0_mlp = b0.mlp.forward(x1);
      stages->block0_norm2 = b0.norm2.forward(stages->block0_mlp);
    }
  }
  x = blocks.forward(x, at::Tensor(), stages ? &stages->block_out : nullptr);
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
                                const std::string& logit_scale_key, unsigned towers) {
  c.validate();
  EvaClipModel m;
  m.config = c;
  m.logit_scale = root.get(logit_scale_key, {}, Kind::Scalar).item<float>();
  if (towers & kVision) m.visual = EvaVisionTower::load(root.sub("visual."), c.vision, c.embed_dim);
  if (towers & kText) m.text = vit::ClipTextTower::load(root.sub(text_prefix), text_config(c));
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
