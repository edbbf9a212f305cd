// EVA02-CLIP-bigE-14-plus (eva_clip CustomCLIP) on the shared ViT pieces (experts/vit/):
//   visual = EVAVisionTransformer: Conv2d patch embed (bias) -> [cls | patches] + pos_embed ->
//            64 post-norm blocks (x + norm1(attn(x)); x + norm2(mlp(x)); fused qkv with
//            cat(q_bias, 0, v_bias); fc1 -> erf GELU -> fc2; LayerNorm eps 1e-6) -> visual.norm on
//            all tokens -> token 0 -> visual.head (Linear with bias).
//            EVA-CLIP-18B (use_rms_norm, qkv_bias: false): the same with RMSNorm for norm1 / norm2 /
//            visual.norm, a qkv without any bias and a head without bias; 48 blocks of width 5120.
//   text   = open_clip TextTransformer under "text." (vit::ClipTextTower, LayerNorm eps 1e-5).
// Shapes: B items, W vision width (1792), T = 257 tokens, E = embed_dim (1024).
// Precision: float32 residual stream; matmul weights in the WeightSource's dtype (vit_layers.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
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
  at::Tensor block0_fc1;     // [B, T, H]   blocks[0].mlp.fc1(x1), x1 = x + norm1(attn(x))
  at::Tensor block0_mlp;     // [B, T, W]   blocks[0].mlp(x1)
  at::Tensor block0_norm2;   // [B, T, W]   blocks[0].norm2(mlp(x1))
  std::vector<at::Tensor> block_out;  // each [B, T, W]
  at::Tensor final_norm;     // [B, T, W]   visual.norm over all tokens
  at::Tensor pooled;         // [B, W]      final_norm[:, 0]
};

// Which names a checkpoint gives the vision tower's tensors.
enum class EvaKeyLayout {
  Official,     // eva_clip's CustomCLIP state dict ("visual.cls_token", "visual.blocks.N.attn.qkv", ...)
  HuggingFace,  // the hub port (BAAI/EVA-CLIP-18B, EvaCLIPModel): "vision_model.embeddings.*",
                // "vision_model.encoder.layers.N.{layer_norm1, self_attn.{q,k,v}_proj, self_attn.out_proj,
                // layer_norm2, mlp.fc1, mlp.fc2}", "vision_model.post_layernorm", "visual_projection"
};

// One vision block (visual.blocks.N): norm1, attn.qkv / attn.proj, norm2, mlp.fc1 / mlp.fc2 — the
// shared vit::Block configured by EvaVisionTower::block_spec (post-norm; RMSNorm and bias-free qkv
// for EVA-CLIP-18B, LayerNorm and q/v bias for bigE).
using EvaVisionBlock = vit::Block;

// visual.* of CustomCLIP.
//
// Block-level API (streamed execution: a caller that cannot hold all blocks builds block i just
// before it runs and drops it after). The resident forward() is exactly
//     x = embed_patches(pixels); for i: x = run_block(blocks.blocks[i], x); return finish(x);
// so a streamed loop over load_block(w, i) gives bit-identical results:
//     EvaVisionTower t = EvaVisionTower::load(root, config, embed_dim, layout, /*with_blocks=*/false);
//     at::Tensor x = t.embed_patches(pixels);                  // [B, T, W]
//     for (int64_t i = 0; i < config.layers; ++i) {
//       EvaVisionBlock b = t.load_block(root, i);             // only block i's tensors
//       x = EvaVisionTower::run_block(b, x);                   // [B, T, W] -> [B, T, W]
//     }                                                        // b (and its mapped pages) dropped here
//     at::Tensor features = t.finish(x);                       // [B, E]
struct EvaVisionTower {
  EvaVisionConfig config;
  EvaKeyLayout layout = EvaKeyLayout::Official;
  vit::PatchEmbed patch_embed;  // visual.patch_embed.proj: Conv2d(3, W, P, P) with bias
  at::Tensor cls_token;         // visual.cls_token [1, 1, W] float32
  at::Tensor pos_embed;         // visual.pos_embed [1, T, W] float32
  vit::Transformer blocks;      // visual.blocks.N (empty when loaded with with_blocks = false)
  vit::LayerNorm norm;          // visual.norm: LayerNorm (bigE) or RMSNorm (18B), eps 1e-6
  vit::Linear head;             // visual.head [E, W] (+ bias [E] when qkv_bias; HF: optional bias)

  // `root` is the checkpoint's top level ("visual.*" or "vision_model.*" / "visual_projection.*"
  // by `layout`). with_blocks = false loads the stem, final norm and head only (streaming).
  static EvaVisionTower load(const WeightSource& root, const EvaVisionConfig& config, int64_t embed_dim,
                             EvaKeyLayout layout = EvaKeyLayout::Official, bool with_blocks = true);
  // The block layout of the config (post-norm, FusedQV / Fused / Separate, fc1/fc2, eps 1e-6).
  static vit::BlockSpec block_spec(const EvaVisionConfig& config, EvaKeyLayout layout = EvaKeyLayout::Official);
  // Full name prefix of block i ("visual.blocks.i" / "vision_model.encoder.layers.i").
  static std::string block_prefix(int64_t index, EvaKeyLayout layout = EvaKeyLayout::Official);

  // Block i's tensors from `root` (the same source load() took); InputError naming the key when
  // one is missing or misshapen.
  EvaVisionBlock load_block(const WeightSource& root, int64_t index) const;
  // pixels [B, 3, 224, 224] -> tokens [B, T, W] float32: patch embed, [cls | patches] + pos_embed.
  at::Tensor embed_patches(const at::Tensor& pixels, EvaVisionStages* stages = nullptr) const;
  // One block on the whole batch: x [B, T, W] float32 -> [B, T, W] float32.
  static at::Tensor run_block(const EvaVisionBlock& block, const at::Tensor& x);
  // After the last block: visual.norm, token 0, visual.head: x [B, T, W] -> features [B, E] float32.
  at::Tensor finish(const at::Tensor& x, EvaVisionStages* stages = nullptr) const;

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
                           const std::string& logit_scale_key = "logit_scale", unsigned towers = kAll,
                           EvaKeyLayout layout = EvaKeyLayout::Official);

  static vit::ClipTextConfig text_config(const EvaClipConfig& config);

  // encode_image / encode_text (normalize=False): float32 [B, E].
  at::Tensor encode_image(const at::Tensor& pixels, EvaVisionStages* stages = nullptr) const;
  at::Tensor encode_text(const at::Tensor& ids, vit::ClipTextStages* stages = nullptr) const;
};

// OmniBind's two normalisations: x / x.norm(dim=-1, keepdim=True), then F.normalize (eps 1e-12).
at::Tensor omnibind_normalize(const at::Tensor& features);

}  // namespace omnibind::experts::eva_clip
