#include "omnibind/experts/open_clip/open_clip_model.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::open_clip {

using Kind = WeightSource::Kind;

at::Tensor VisionTransformer::forward(const at::Tensor& pixels, VisionStages* st) const {
  require(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == image_size && pixels.size(3) == image_size,
          "open_clip vision: pixels must be [B, 3, " + std::to_string(image_size) + ", " + std::to_string(image_size) + "]");
  const int64_t B = pixels.size(0), W = class_embedding.size(0);
  at::Tensor patches = conv1.forward(pixels);  // [B, G*G, W]
  // cat([class_embedding + zeros, patches]) + positional_embedding (patch_dropout: identity in eval).
  at::Tensor x = at::cat({class_embedding.view({1, 1, W}).expand({B, 1, W}), patches}, 1) + positional_embedding;
  if (st) {
    st->conv1 = patches;
    st->tokens_in = x;
  }
  x = ln_pre.forward(x);
  if (st) st->ln_pre = x;
  x = transformer.forward(x, at::Tensor(), st ? &st->block_out : nullptr);
  x = ln_post.forward(x);  // final_ln_after_pool = False: LayerNorm on every token, then pool
  at::Tensor pooled = avg_pool ? x.narrow(1, 1, x.size(1) - 1).mean(1) : x.select(1, 0);
  if (st) {
    st->ln_post = x;
    st->pooled = pooled;
  }
  return proj.forward(pooled);
}

OpenClipModel OpenClipModel::load(const WeightSource& w, const OpenClipConfig& c) {
  c.validate();
  OpenClipModel m;
  m.config = c;
  const auto act = c.quick_gelu ? vit::Activation::QuickGelu : vit::Activation::GeluErf;
  const int64_t W = c.vision_width, T = c.vision_tokens();

  auto& v = m.visual;
  v.image_size = c.image_size;
  v.avg_pool = c.avg_pool;
  v.conv1.load(w, "visual.conv1", 3, W, c.patch_size, /*has_bias=*/false);
  v.class_embedding = w.get("visual.class_embedding", {W}, Kind::Embedding).to(at::kFloat);
  v.positional_embedding = w.get("visual.positional_embedding", {T, W}, Kind::Embedding).to(at::kFloat);
  v.ln_pre.load(w, "visual.ln_pre", W, 1e-5);
  auto vspec = vit::BlockSpec::open_clip(W, c.vision_heads(), c.vision_mlp(), act);
  if (c.vision_layer_scale) {
    vspec.layer_scale1_name = "ls_1.gamma";
    vspec.layer_scale2_name = "ls_2.gamma";
  }
  v.transformer.load(w, "visual.transformer.resblocks", c.vision_layers, vspec);
  v.ln_post.load(w, "visual.ln_post", W, 1e-5);
  v.proj.load_matrix(w, "visual.proj", W, c.embed_dim);

  vit::ClipTextConfig tc;
  tc.vocab_size = c.vocab_size;
  tc.context_length = c.context_length;
  tc.width = c.text_width;
  tc.heads = c.text_heads;
  tc.layers = c.text_layers;
  tc.mlp_hidden = c.text_mlp();
  tc.embed_dim = c.embed_dim;
  tc.act = act;
  tc.eps = 1e-5;
  if (!c.text_layer_scale) {
    m.text = vit::ClipTextTower::load(w, tc);
  } else {
    // Same tower with LayerScale in every block: load the plain tower, then the gammas.
    m.text = vit::ClipTextTower::load(w, tc);
    for (int64_t i = 0; i < c.text_layers; ++i) {
      auto& b = m.text.transformer.blocks[static_cast<size_t>(i)];
      const std::string p = "transformer.resblocks." + std::to_string(i) + ".";
      b.ls1 = w.get(p + "ls_1.gamma", {c.text_width}, Kind::NormWeight).to(at::kFloat);
      b.ls2 = w.get(p + "ls_2.gamma", {c.text_width}, Kind::NormWeight).to(at::kFloat);
    }
  }
  // logit_scale is part of the state dict (strict loading needs it) but not of any embedding.
  (void)w.get("logit_scale", {}, Kind::Scalar);
  // open_clip checkpoints never hold attn_mask (non-persistent buffer); anything else is unexpected.
  w.require_all_used();
  return m;
}

at::Tensor OpenClipModel::encode_image(const at::Tensor& pixels, VisionStages* stages) const {
  return visual.forward(pixels.to(at::kFloat), stages);
}

at::Tensor OpenClipModel::encode_text(const at::Tensor& ids, vit::ClipTextStages* stages) const {
  return text.forward(ids, stages);
}

}  // namespace omnibind::experts::open_clip
