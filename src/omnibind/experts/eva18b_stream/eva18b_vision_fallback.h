// FOR THE LEAD TO RECONCILE with the EVA-CLIP-18B port of branch `eva18b`: a minimal EVA-CLIP-18B
// vision tower (shared/docs/experts/eva_clip_18b.md), written only so the streaming machinery
// (tensor_io/block_stream.h, eva18b_stream/streamed_vision.h) has a block forward to drive before
// that port's block-level API exists. Once it does, StreamedVision should call that port's
// per-block weights / block forward / embed / finish instead and this file should go.
//
// Layout (PyTorch checkpoint keys, prefix "visual."):
//   patch_embed.proj.weight [W, 3, 14, 14] / .bias [W]; cls_token [1, 1, W]; pos_embed [1, 257, W]
//   blocks.N.norm1.weight [W] (RMSNorm, weight only)
//   blocks.N.attn.qkv.weight [3W, W] (no bias), blocks.N.attn.proj.weight [W, W] / .bias [W]
//   blocks.N.norm2.weight [W]; blocks.N.mlp.fc1 [5W, W] + bias, blocks.N.mlp.fc2 [W, 5W] + bias
//   norm.weight [W] (RMSNorm); head.weight [E, W] (no bias)
// Post-norm blocks: x = x + norm1(attn(x)); x = x + norm2(mlp(x)). RMSNorm: w * x * rsqrt(mean(x^2) + 1e-6),
// in float32. GELU erf. Matmuls by experts/mixed_matmul.h's rule (vit::Linear / vit::Attention).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "omnibind/experts/vit/vit_layers.h"

namespace omnibind::experts {
class WeightSource;
}

namespace omnibind::experts::eva18b_stream {

struct VisionConfig {
  int64_t width = 5120, depth = 48, head_width = 128, mlp_hidden = 25600;
  int64_t image_size = 224, patch_size = 14, embed_dim = 1536;
  double eps = 1e-6;
  int64_t heads() const { return width / head_width; }
  int64_t tokens() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }
  // The released model (shared/docs/experts/eva_clip_18b.md).
  static VisionConfig official() { return {}; }
};

// y = weight * x * rsqrt(mean(x^2, -1) + eps), float32.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// One post-norm block, its tensors read from `w` under "<prefix>." (e.g. "visual.blocks.7").
struct VisionBlock {
  at::Tensor norm1, norm2;  // float32 [W]
  vit::Attention attn;      // qkv without bias, proj with bias
  vit::Mlp mlp;             // fc1 / fc2, GELU erf
  double eps = 1e-6;
  static VisionBlock load(const WeightSource& w, const std::string& prefix, const VisionConfig& c);
  at::Tensor forward(const at::Tensor& x) const;  // [B, L, W] float32 -> [B, L, W]
};

// Everything of the tower but the blocks (~25 MB at the official widths): kept resident.
struct VisionEnds {
  VisionConfig config;
  at::Tensor patch_weight, patch_bias;  // float32 [W, 3, p, p], [W]
  at::Tensor cls_token, pos_embed;      // float32 [1, 1, W], [1, L, W]
  at::Tensor norm;                      // float32 [W]
  vit::Linear head;                     // [E, W], no bias
  // "<prefix>patch_embed.proj.*", "<prefix>cls_token", "<prefix>pos_embed", "<prefix>norm.weight",
  // "<prefix>head.weight" (prefix "visual.").
  static VisionEnds load(const WeightSource& w, const std::string& prefix, const VisionConfig& c);
  at::Tensor embed(const at::Tensor& pixels) const;   // [B, 3, 224, 224] -> tokens [B, L, W] float32
  at::Tensor finish(const at::Tensor& x) const;       // last block's output [B, L, W] -> features [B, E]
};

}  // namespace omnibind::experts::eva18b_stream
