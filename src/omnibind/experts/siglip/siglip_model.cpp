#include "omnibind/experts/siglip/siglip_model.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"

namespace omnibind::experts::siglip {

namespace {

using Kind = WeightSource::Kind;

// SiglipEncoderLayer: pre-LN, separate q/k/v/out with bias, (q k^T) * head_dim^-0.5, tanh-GELU MLP.
vit::BlockSpec encoder_layer(const TowerConfig& t) {
  vit::BlockSpec b;
  b.attn.dim = t.hidden;
  b.attn.heads = t.heads;
  b.attn.layout = vit::QkvLayout::Separate;
  b.attn.scale_after_matmul = true;
  b.attn.out_name = "out_proj";
  b.mlp_hidden = t.mlp;
  b.act = t.act;
  b.norm = vit::NormPlacement::Pre;
  b.eps = t.eps;
  b.norm1_name = "layer_norm1";
  b.norm2_name = "layer_norm2";
  b.attn_name = "self_attn";
  b.mlp_name = "mlp";
  b.fc1_name = "fc1";
  b.fc2_name = "fc2";
  return b;
}

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, {-1}, true); }

}  // namespace

void AttentionPoolingHead::load(const WeightSource& w, const std::string& prefix, const TowerConfig& c) {
  probe = w.get(prefix + ".probe", {1, 1, c.hidden}, Kind::Embedding).to(at::kFloat);
  vit::AttentionSpec s;  // torch.nn.MultiheadAttention(D, heads, batch_first=True)
  s.dim = c.hidden;
  s.heads = c.heads;
  s.layout = vit::QkvLayout::Packed;
  s.scale_after_matmul = false;
  s.out_name = "out_proj";
  attention.load(w, prefix + ".attention", s);
  layernorm.load(w, prefix + ".layernorm", c.hidden, c.eps);
  mlp.load(w, prefix + ".mlp", c.hidden, c.mlp, c.act, "fc1", "fc2");
}

at::Tensor AttentionPoolingHead::forward(const at::Tensor& tokens) const {
  const at::Tensor q = probe.expand({tokens.size(0), 1, probe.size(2)});
  at::Tensor h = attention.forward_cross(q, tokens);  // [B, 1, D]
  h = h + mlp.forward(layernorm.forward(h));
  return h.select(1, 0);
}

void SiglipVision::load(const WeightSource& w, const SiglipConfig& c) {
  const int64_t D = c.vision.hidden;
  patch_embedding.load(w, "vision_model.embeddings.patch_embedding", c.channels, D, c.patch, /*has_bias=*/true);
  position_embedding =
      w.get("vision_model.embeddings.position_embedding.weight", {c.vision_tokens(), D}, Kind::Embedding).to(at::kFloat);
  encoder.load(w, "vision_model.encoder.layers", c.vision.layers, encoder_layer(c.vision));
  post_layernorm.load(w, "vision_model.post_layernorm", D, c.vision.eps);
  head.load(w, "vision_model.head", c.vision);
}

at::Tensor SiglipVision::forward(const at::Tensor& pixels, VisionStages* stages) const {
  at::Tensor x = patch_embedding.forward(pixels) + position_embedding;  // [B, N, D]
  if (stages) stages->embeddings = x;
  x = encoder.forward(x, {}, stages ? &stages->block_out : nullptr);
  x = post_layernorm.forward(x);
  if (stages) stages->post_layernorm = x;
  return head.forward(x);
}

void SiglipText::load(const WeightSource& w, const SiglipConfig& c) {
  const int64_t D = c.text.hidden;
  token_embedding =  // rows upcast on lookup (exact)
      w.get_matmul("text_model.embeddings.token_embedding.weight", {c.vocab_size, D}, Kind::Embedding);
  position_embedding =
      w.get("text_model.embeddings.position_embedding.weight", {c.max_positions, D}, Kind::Embedding).to(at::kFloat);
  encoder.load(w, "text_model.encoder.layers", c.text.layers, encoder_layer(c.text));
  final_layer_norm.load(w, "text_model.final_layer_norm", D, c.text.eps);
  head.load(w, "text_model.head", D, D, /*has_bias=*/true);
}

at::Tensor SiglipText::forward(const at::Tensor& ids, TextStages* stages) const {
  const int64_t L = ids.size(1);
  require(L >= 1 && L <= position_embedding.size(0),
          "SigLIP text: " + std::to_string(L) + " token positions, the model has " +
              std::to_string(position_embedding.size(0)));
  at::Tensor x = at::embedding(token_embedding, ids).to(at::kFloat) + position_embedding.narrow(0, 0, L);
  if (stages) stages->embeddings = x;
  x = encoder.forward(x, {}, stages ? &stages->block_out : nullptr);  // no mask at all
  x = final_layer_norm.forward(x);
  if (stages) stages->final_layer_norm = x;
  return head.forward(x.select(1, L - 1));  // "sticky eos": the last position
}

SiglipModel SiglipModel::load(const SiglipConfig& config, const WeightSource& w) {
  config.validate();
  SiglipModel m;
  m.config = config;
  m.vision.load(w, config);
  m.text.load(w, config);
  m.logit_scale = w.get("logit_scale", {1}, Kind::Scalar);
  m.logit_bias = w.get("logit_bias", {1}, Kind::Scalar);
  w.require_all_used({"vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"});
  return m;
}

at::Tensor SiglipModel::image_embeds(const at::Tensor& pixels) const { return unit(vision.forward(pixels)); }

at::Tensor SiglipModel::text_embeds(const at::Tensor& ids) const { return unit(text.forward(ids)); }

}  // namespace omnibind::experts::siglip
