// EVA-CLIP (baaivision/EVA EVA-CLIP/rei/eva_clip, vendored by OmniBind as omni_model/eva_clip)
// model configurations: the released EVA02-CLIP-bigE-14-plus (OmniBind's `EVA_E14p`) built in,
// any other width from a JSON file in the reference's model_configs format.
//
// Only the switches bigE and EVA-CLIP-18B use are implemented: EVA ViT with absolute position
// embedding, fused qkv + q/v bias (bigE) or fused qkv without any bias (18B, qkv_bias: false, which
// also drops visual.head's bias), LayerNorm (bigE) or RMSNorm (18B, use_rms_norm: true), erf-GELU
// MLP, class-token pooling, post-norm (both) or pre-norm blocks; the open_clip-style text tower.
// EVA-CLIP-18B comes from baaivision/EVA EVA-CLIP-18B/shinji/eva_clip (model_configs/EVA-CLIP-18B.json). Configs asking for RoPE, SwiGLU, sub-LN, mean pooling, layer scale
// or an HF text tower (EVA02-CLIP-B/L, EVA01) are refused with a message naming the key.
#pragma once
#include <cstdint>
#include <string>

namespace omnibind::experts::eva_clip {

struct EvaVisionConfig {       // CustomCLIP.visual = EVAVisionTransformer (vision_cfg)
  int64_t image_size = 224;
  int64_t patch_size = 14;
  int64_t layers = 64;
  int64_t width = 1792;
  int64_t head_width = 112;    // heads = width / head_width
  double mlp_ratio = 8.571428571428571;
  bool postnorm = true;        // x + norm1(attn(x)) (true) or x + attn(norm1(x)) (false)
  bool qkv_bias = true;        // q_bias/v_bias and visual.head.bias (true, bigE); none of them (false, 18B)
  bool use_rms_norm = false;   // RMSnorm (weight only) for norm1/norm2/visual.norm (18B) instead of LayerNorm
  double ln_eps = 1e-6;        // partial(LayerNorm / FusedLayerNorm / RMSnorm, eps=1e-6)

  int64_t heads() const { return width / head_width; }
  int64_t grid() const { return image_size / patch_size; }                    // 16
  int64_t tokens() const { return 1 + grid() * grid(); }                      // 257
  // Block(mlp_ratio): int(dim * mlp_ratio) in Python doubles (1792 -> 15360, 64 -> 548).
  int64_t mlp_hidden() const { return static_cast<int64_t>(static_cast<double>(width) * mlp_ratio); }
};

struct EvaTextConfig {         // CustomCLIP.text = TextTransformer (text_cfg)
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t width = 1280;
  int64_t heads = 20;
  int64_t layers = 32;
  int64_t mlp_hidden() const { return 4 * width; }  // mlp_ratio 4.0 (TextTransformer default)
  double ln_eps = 1e-5;        // FusedLayerNorm / LayerNorm class without eps
};

struct EvaClipConfig {
  std::string name = "EVA02-CLIP-bigE-14-plus";  // built-in name or the config file's path
  int64_t embed_dim = 1024;
  EvaVisionConfig vision;
  EvaTextConfig text;

  // InputError (prefixed by `name`) when sizes are inconsistent or unsupported here.
  void validate() const;
  // Parameters of CustomCLIP with this config (logit_scale included): 5,044,889,089 for bigE-14-plus.
  int64_t parameter_count() const;
};

// Built-in sizes: "EVA02-CLIP-bigE-14-plus" (also accepted: "" , "bigE-14-plus", "E14p",
// "EVA_E14p") and "EVA-CLIP-18B" (also "18B", "EVA_18B": vision 5120 x 48 blocks, 40 heads, MLP
// 25600, RMSNorm, no qkv/head bias; text 1280 x 32; embed 1536). InputError listing the known names
// otherwise.
EvaClipConfig builtin_config(const std::string& size);

// A JSON config: the reference's model_configs/*.json object ({embed_dim, vision_cfg, text_cfg})
// or an object holding one under "model_config" (the parity fixture's config.json). Keys absent
// from vision_cfg/text_cfg take the reference dataclass defaults (CLIPVisionCfg/CLIPTextCfg).
// InputError naming the file and the key on any defect or unsupported switch.
EvaClipConfig load_config(const std::string& path);

}  // namespace omnibind::experts::eva_clip
