// EVA02-CLIP-bigE-14-plus (eva_clip CustomCLIP) on the shared ViT pieces (experts/vit/):
//   visual = EVAVisionTransformer: Conv2d patch embed (bias) -> [cls | patches] + pos_embed ->
//            64 post-norm blocks (x + norm1(attn(x)); x + norm2(mlp(x)); fused qkv with
//            cat(q_bias, 0, v_bias); fc1 -> erf GELU -> fc2; LayerNorm eps 1e-6) -> visual.norm on
//            all tokens -> token 0 -> visual.head (Linear with bias).
//   text   = open_clip TextTransformer under "text." (vit::ClipTextTower, LayerNorm eps 1e-5).
// Shapes: B items, W vision width (1792), T = 257 tokens, E = embed_dim (1024).
// Precision: float32 residual stream; matmul weights in the WeightSource's dtype (vit_layers.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/vit/clip_text.h"
#include "omnibind/experts/vit/vit_layers.h"

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::eva_clip {

// Intermediates of one vision forward (parity tests, debugging); every tensor float32.
struct EvaVisionStages {
  at::Tensor patch_embed;    // [B, T-1, W] patch_embed(x): conv -> flatten(2) -> transpose
  at::Tensor tokens_in;      // [B, T, W]   cat(cls, patches) + pos_embed: the input of block 0
  at::Tensor block0_attn;    // [B, T, W]   blocks[0].attn(x) (on the un-normalised stream)
  at::Tensor block0_norm1;   // [B, T, W]   blocks[0].norm1(attn(x))
  at::Tensor block0_mlp;     // [B, T, W]   blocks[0].mlp(x1), x1 = x + norm1(attn(x))
  at::Tensor block0_norm2;   // [B, T, W]   blocks[0].norm2(mlp(x1))
  std::vector<at::Tensor> block_out;  // each [B, T, W]
  at::Tensor final_norm;     // [B, T, W]   visual.norm over all tokens
  at::Tensor pooled;         // [B, W]      final_norm[:, 0]
};

// visual.* of CustomCLIP.
struct EvaVisionTower {
  EvaVisionConfig config;
  vit::PatchEmbed patch_embed;  // visual.patch_embed.proj: Conv2d(3, W, P, P) with bias
  at::Tensor cls_token;         // visual.cls_token [1, 1, W] float32
  at::Tensor pos_embed;         // visual.pos_embed [1, T, W] float32
  vit::Transformer blocks;      // visual.blocks.N
  vit::LayerNorm norm;          // visual.norm (eps 1e-6)
  vit::Linear head;             // visual.head [E, W] + bias [E]

  // `w` is rooted at "visual.".
  static EvaVisionTower load(const WeightSource& w, const EvaVisionConfig& config, int64_t embed_dim);
  // The block layout of the config (post-norm, FusedQV, fc1/fc2, eps 1e-6).
  static vit::BlockSpec block_spec(const EvaVisionConfig& config);
  // pixels [B, 3, 224, 224] float32 -> features [B, E] float32 (encode_image, normalize=False).
  at::Tensor forward(const at::Tensor& pixels, EvaVisionStages* stages = nullptr) const;
};

struct EvaClipModel {
  EvaClipConfig config;
  EvaVisionTower visual;
  vit::ClipTextTower text;
  float logit_scale = 0;  // loaded (strict key coverage) but unused by OmniBind

  enum Towers : unsigned { kVision = 1, kText = 2, kAll = 3 };
  // `visual` rooted at "visual.", `text` at the text tower ("text." or "" in the old layout),
  // `root` at the top level (logit_scale under `logit_scale_key`). Only the towers asked for are
  // loaded (benchmarks); the expert loads both and checks key coverage.
  static EvaClipModel load(const EvaClipConfig& config, const WeightSource& root, const std::string& text_prefix = "text.",
                           const std::string& logit_scale_key = "logit_scale", unsigned towers = kAll);

  static vit::ClipTextConfig text_config(const EvaClipConfig& config);

  // encode_image / encode_text (normalize=False): float32 [B, E].
  at::Tensor encode_image(const at::Tensor& pixels, EvaVisionStages* stages = nullptr) const;
  at::Tensor encode_text(const at::Tensor& ids, vit::ClipTextStages* stages = nullptr) const;
};

// OmniBind's two normalisations: x / x.norm(dim=-1, keepdim=True), then F.normalize (eps 1e-12).
at::Tensor omnibind_normalize(const at::Tensor& features);

}  // namespace omnibind::experts::eva_clip
