// ImageBind's vision, audio and text towers (facebookresearch/ImageBind imagebind_model.py):
// modality preprocessor (stem + cls + positional embedding) -> trunk -> head -> postprocessor.
// Depth/thermal/IMU towers in the checkpoint are ignored.
#pragma once
#include <ATen/core/Tensor.h>

#include "omnibind/experts/imagebind/imagebind_config.h"
#include "omnibind/experts/imagebind/imagebind_layers.h"

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::imagebind {


// Vision: PadIm2Video(repeat to T frames) + Conv3d(kernel = stride, no bias) patches, cls, pos.
struct VisionTower {
  at::Tensor stem_weight;  // rgbt_stem.proj.1.weight [D, 3, kt, kh, kw]
  at::Tensor cls_token;    // [1, 1, D]
  at::Tensor pos_embed;    // pos_embedding_helper.pos_embed [1, 1+N, D]
  Trunk trunk;             // pre-transformer LayerNorm, no bias_kv
  LayerNorm head_norm;     // modality_heads.vision.0
  Linear head_proj;        // modality_heads.vision.2 (no bias)
};

// Audio: Conv2d(1 -> D, kernel 16, stride 10, no bias) + stem LayerNorm(eps 1e-5), cls, pos.
struct AudioTower {
  at::Tensor stem_weight;  // rgbt_stem.proj.weight [D, 1, k, k]
  LayerNorm stem_norm;     // rgbt_stem.norm_layer
  at::Tensor cls_token, pos_embed;
  Trunk trunk;             // no pre-LN, bias_kv
  LayerNorm head_norm;     // modality_heads.audio.0
  Linear head_proj;        // modality_heads.audio.2 (no bias)
  float logit_scale = 20;  // min(exp(modality_postprocessors.audio.1.log_logit_scale), 100)
};

// Text: token embedding + pos, causal mask, head picks the EOT position (argmax of ids).
struct TextTower {
  at::Tensor token_embedding;  // [vocab, D]
  at::Tensor pos_embed;        // [1, 77, D]
  at::Tensor causal_mask;      // [77, 77] 0 on/below the diagonal, -inf above (built, not loaded)
  Trunk trunk;                 // no pre-LN, no bias_kv
  LayerNorm head_norm;         // modality_heads.text.proj.0
  Linear head_proj;            // modality_heads.text.proj.1 (no bias)
  float logit_scale = 1;       // min(exp(modality_postprocessors.text.1.log_logit_scale), 100)
};

struct ImageBindModel {
  ImageBindConfig config;
  at::ScalarType dtype = at::kFloat;  // precision (float32 or bfloat16): matmuls by experts/mixed_matmul.h's rule
  VisionTower vision;
  AudioTower audio;
  TextTower text;

  // Loads every vision/text/audio tensor in the reference state dict's order, so a foreign
  // checkpoint is reported by its first missing key.
  // `towers` limits loading to some towers (benchmarks); the others stay empty.
  enum Towers : unsigned { kVision = 1, kAudio = 2, kText = 4, kAll = 7 };
  static ImageBindModel load(const ImageBindConfig& config, const WeightSource& weights, unsigned towers = kAll);

  // Stages (float32 in and out; only matmul weights follow the precision). Shapes for the huge config in comments.
  at::Tensor vision_tokens(const at::Tensor& pixels) const;   // [B,3,224,224] -> [B,257,D]
  at::Tensor audio_tokens(const at::Tensor& melspec) const;   // [B,1,128,204] -> [B,229,D]
  at::Tensor text_tokens(const at::Tensor& ids) const;        // [B,77] int64 -> [B,77,D]
  at::Tensor vision_head(const at::Tensor& trunk_out) const;  // [B,257,D] -> [B,out]
  at::Tensor audio_head(const at::Tensor& trunk_out) const;   // [B,229,D] -> [B,out]
  at::Tensor text_head(const at::Tensor& trunk_out, const at::Tensor& ids) const;  // -> [B,out]

  // Head outputs (before the postprocessor), float32.
  at::Tensor vision_forward(const at::Tensor& pixels) const;   // [B,3,224,224] -> [B,out]
  at::Tensor audio_forward(const at::Tensor& melspec) const;   // [B,1,128,204] -> [B,out] (one clip per row)
  at::Tensor text_forward(const at::Tensor& ids) const;        // [B,77] -> [B,out]

  // What the reference ImageBindModel.forward returns (postprocessed; audio clips [B,S,1,128,204]
  // are embedded per clip, postprocessed, then averaged over clips without renormalising).
  at::Tensor vision_embed(const at::Tensor& pixels) const;
  at::Tensor audio_embed(const at::Tensor& clips) const;
  at::Tensor text_embed(const at::Tensor& ids) const;

 private:
  static at::Tensor head_proj_f32(const Linear& proj, const at::Tensor& x);
};

}  // namespace omnibind::experts::imagebind
