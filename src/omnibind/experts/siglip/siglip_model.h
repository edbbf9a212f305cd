// transformers' SiglipModel (4.37.2, eager attention) on the shared ViT blocks: plain structs whose
// members mirror model.safetensors' keys. Shapes: B items, N = (image/patch)^2 patches, L = 64 text
// positions, D = hidden size, M = intermediate size.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/experts/siglip/siglip_config.h"
#include "omnibind/experts/vit/vit_layers.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::siglip {

// vision_model.head (SiglipMultiheadAttentionPoolingHead): a learned probe queries the tokens through
// torch.nn.MultiheadAttention (packed in_proj), then h + mlp(layernorm(h)); the probe's row.
struct AttentionPoolingHead {
  at::Tensor probe;            // [1, 1, D] float32
  vit::Attention attention;    // in_proj_weight [3D, D] (rows q | k | v), in_proj_bias [3D], out_proj
  vit::LayerNorm layernorm;    // eps = layer_norm_eps
  vit::Mlp mlp;                // fc1 [M, D], fc2 [D, M], tanh-GELU
  void load(const WeightSource& w, const std::string& prefix, const TowerConfig& c);
  at::Tensor forward(const at::Tensor& tokens) const;  // [B, N, D] -> [B, D]
};

struct VisionStages {
  at::Tensor embeddings;              // [B, N, D] patch conv + position embedding
  std::vector<at::Tensor> block_out;  // each [B, N, D]
  at::Tensor post_layernorm;          // [B, N, D] last_hidden_state
};

// vision_model: Conv2d(3, D, P, stride P, bias) -> + position_embedding (no class token) -> pre-LN
// encoder -> post_layernorm -> head.
struct SiglipVision {
  vit::PatchEmbed patch_embedding;  // embeddings.patch_embedding [D, 3, P, P] + bias
  at::Tensor position_embedding;    // embeddings.position_embedding.weight [N, D] float32
  vit::Transformer encoder;         // encoder.layers.{i}.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1/fc2}
  vit::LayerNorm post_layernorm;
  AttentionPoolingHead head;
  void load(const WeightSource& w, const SiglipConfig& c);  // keys under "vision_model."
  at::Tensor forward(const at::Tensor& pixels, VisionStages* stages = nullptr) const;  // [B,3,S,S] -> [B, D]
};

struct TextStages {
  at::Tensor embeddings;              // [B, L, D] token + position embedding
  std::vector<at::Tensor> block_out;  // each [B, L, D]
  at::Tensor final_layer_norm;        // [B, L, D] last_hidden_state
};

// text_model: token_embedding + position_embedding -> encoder WITHOUT any mask (no causal mask, and
// OmniBind's processor returns no attention_mask, so padding is attended) -> final_layer_norm ->
// the LAST position (a pad "</s>" for texts shorter than L) -> head Linear(D, D).
struct SiglipText {
  at::Tensor token_embedding;     // embeddings.token_embedding.weight [V, D] (compute dtype)
  at::Tensor position_embedding;  // embeddings.position_embedding.weight [64, D] float32
  vit::Transformer encoder;
  vit::LayerNorm final_layer_norm;
  vit::Linear head;               // [D, D] + bias
  void load(const WeightSource& w, const SiglipConfig& c);  // keys under "text_model."
  at::Tensor forward(const at::Tensor& ids, TextStages* stages = nullptr) const;  // int64 [B, L<=64] -> [B, D]
};

struct SiglipModel {
  SiglipConfig config;
  SiglipVision vision;
  SiglipText text;
  at::Tensor logit_scale, logit_bias;  // [1] each; loaded (strict key check), unused by OmniBind

  // Every tensor of model.safetensors (bare keys), shapes checked; then strict coverage: a tensor
  // the model does not use is an InputError (position_ids buffers of older exports are allowed).
  static SiglipModel load(const SiglipConfig& config, const WeightSource& w);

  // SiglipModel.forward's image_embeds / text_embeds: pooled / ||pooled|| (float32 [B, D]).
  at::Tensor image_embeds(const at::Tensor& pixels) const;
  at::Tensor text_embeds(const at::Tensor& ids) const;
};

}  // namespace omnibind::experts::siglip
