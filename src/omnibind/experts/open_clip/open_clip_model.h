// open_clip v2.24.0 `CLIP` with its native towers (VisionTransformer + TextTransformer), as plain
// structs whose members mirror the state-dict keys of open_clip_pytorch_model.bin:
//   visual.{conv1.weight, class_embedding, positional_embedding, ln_pre, transformer.resblocks.N, ln_post, proj}
//   {token_embedding, positional_embedding, transformer.resblocks.N, ln_final, text_projection}, logit_scale
// Shapes: B images / texts, W vision width, G = image/patch, T = G*G + 1 tokens, E = embed_dim.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/experts/open_clip/open_clip_config.h"
#include "omnibind/experts/vit/clip_text.h"
#include "omnibind/experts/vit/vit_layers.h"

namespace omnibind::experts {
class WeightSource;
}

namespace omnibind::experts::open_clip {

// Intermediates of one vision forward, for parity tests.
struct VisionStages {
  at::Tensor conv1;                   // [B, G*G, W] patch embeddings (conv1, no bias), row-major
  at::Tensor tokens_in;               // [B, T, W] cat(class, patches) + positional_embedding
  at::Tensor ln_pre;                  // [B, T, W]
  std::vector<at::Tensor> block_out;  // each [B, T, W]
  at::Tensor ln_post;                 // [B, T, W]
  at::Tensor pooled;                  // [B, W]
};

struct VisionTransformer {
  vit::PatchEmbed conv1;            // visual.conv1 Conv2d(3, W, P, P, bias=False)
  at::Tensor class_embedding;       // [W] float32
  at::Tensor positional_embedding;  // [T, W] float32
  vit::LayerNorm ln_pre, ln_post;   // eps 1e-5
  vit::Transformer transformer;     // visual.transformer.resblocks.N (pre-LN, packed in_proj)
  vit::Linear proj;                 // visual.proj [W, E] used as x @ proj
  bool avg_pool = false;            // pool_type 'avg' (mean of patch tokens) instead of the class token
  int64_t image_size = 224;

  // pixels [B, 3, S, S] float32 -> features [B, E] (before normalisation).
  at::Tensor forward(const at::Tensor& pixels, VisionStages* stages = nullptr) const;
};

struct OpenClipModel {
  OpenClipConfig config;
  VisionTransformer visual;
  vit::ClipTextTower text;  // keys at the top level (CLIP, not CustomTextCLIP)

  // Loads every tensor of the open_clip state dict through `w` (its dtype = compute dtype: kFloat or
  // kBFloat16), then checks strict key coverage like open_clip's load_checkpoint(strict=True):
  // InputError naming missing keys (first one) or unexpected ones (up to five).
  static OpenClipModel load(const WeightSource& w, const OpenClipConfig& config);

  at::Tensor encode_image(const at::Tensor& pixels, VisionStages* stages = nullptr) const;    // [B, E]
  at::Tensor encode_text(const at::Tensor& ids, vit::ClipTextStages* stages = nullptr) const;  // [B, E]
};

}  // namespace omnibind::experts::open_clip
