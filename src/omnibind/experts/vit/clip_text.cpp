#include "omnibind/experts/vit/clip_text.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::vit {

using Kind = WeightSource::Kind;

ClipTextTower ClipTextTower::load(const WeightSource& w, const ClipTextConfig& c) {
  require(c.width > 0 && c.layers > 0 && c.heads > 0 && c.embed_dim > 0 && c.context_length > 0 && c.vocab_size > 0,
          w.family() + " text config: width, layers, heads, embed_dim, context_length and vocab_size must be positive");
  ClipTextTower t;
  t.config = c;
  const int64_t W = c.width, hidden = c.mlp_hidden > 0 ? c.mlp_hidden : 4 * c.width;
  t.config.mlp_hidden = hidden;
  if (c.hf_layout) {
    const std::string p = "text_model.";
    t.token_embedding = w.get_matmul(p + "embeddings.token_embedding.weight", {c.vocab_size, W}, Kind::Embedding);
    t.positional_embedding =
        w.get(p + "embeddings.position_embedding.weight", {c.context_length, W}, Kind::Embedding).to(at::kFloat);
    BlockSpec s = BlockSpec::open_clip(W, c.heads, hidden, c.act, c.eps);
    s.attn.layout = QkvLayout::Separate;  // q_proj / k_proj / v_proj with biases, out_proj
    s.attn_name = "self_attn";
    s.norm1_name = "layer_norm1";
    s.norm2_name = "layer_norm2";
    s.fc1_name = "fc1";
    s.fc2_name = "fc2";
    t.transformer.load(w, p + "encoder.layers", c.layers, s);
    t.ln_final.load(w, p + "final_layer_norm", W, c.eps);
    t.text_projection.load(w, "text_projection", W, c.embed_dim, /*has_bias=*/false);
  } else {
    t.token_embedding = w.get_matmul("token_embedding.weight", {c.vocab_size, W}, Kind::Embedding);  // rows upcast on lookup
    t.positional_embedding = w.get("positional_embedding", {c.context_length, W}, Kind::Embedding).to(at::kFloat);
    t.transformer.load(w, "transformer.resblocks", c.layers, BlockSpec::open_clip(W, c.heads, hidden, c.act, c.eps));
    t.ln_final.load(w, "ln_final", W, c.eps);
    t.text_projection.load_matrix(w, "text_projection", W, c.embed_dim);
  }
  t.attn_mask = causal_mask(c.context_length);
  return t;
}

at::Tensor ClipTextTower::forward(const at::Tensor& ids, ClipTextStages* stages) const {
  require(ids.dim() == 2 && ids.size(1) == config.context_length && ids.scalar_type() == at::kLong,
          "CLIP text tower: token ids must be int64 [B, " + std::to_string(config.context_length) + "]");
  at::Tensor tok = at::embedding(token_embedding, ids).to(at::kFloat);  // [B, C, W]
  at::Tensor x = tok + positional_embedding;
  if (stages) stages->token_embedding = tok;
  x = transformer.forward(x, attn_mask, stages ? &stages->block_out : nullptr);
  x = ln_final.forward(x);
  at::Tensor idx = first_argmax(ids);                                           // [B]
  const int64_t B = x.size(0), W = x.size(2);
  at::Tensor pooled = x.gather(1, idx.view({B, 1, 1}).expand({B, 1, W})).squeeze(1);  // [B, W]
  if (stages) {
    stages->ln_final = x;
    stages->pool_index = idx;
    stages->pooled = pooled;
  }
  return text_projection.forward(pooled);
}

}  // namespace omnibind::experts::vit
