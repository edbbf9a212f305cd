// open_clip's TextTransformer (CLIP text tower), shared by open_clip/DFN (keys at the top level)
// and EVA02-CLIP (the same keys under "text."; pass WeightSource::sub("text.")):
//   token_embedding.weight [V, W], positional_embedding [C, W],
//   transformer.resblocks.N.{ln_1, attn.in_proj_weight/in_proj_bias/out_proj, ln_2, mlp.c_fc/c_proj},
//   ln_final [W], text_projection [W, E] (x @ P, no bias).
// forward: x = tok_emb[ids] + pos; pre-LN blocks with the additive causal mask; ln_final; the row
// at the FIRST argmax of ids (the first <end_of_text> = 49407, also when a literal one sits inside
// the text); @ text_projection. No normalisation (the caller's expert does that).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "omnibind/experts/vit/vit_layers.h"

namespace omnibind::experts::vit {

struct ClipTextConfig {
  int64_t vocab_size = 49408, context_length = 77;
  int64_t width = 0, heads = 0, layers = 0;
  int64_t mlp_hidden = 0;  // 0 -> 4 * width (open_clip mlp_ratio 4)
  int64_t embed_dim = 0;
  Activation act = Activation::GeluErf;  // QuickGelu for DFN (quick_gelu: true); erf GELU for EVA
  double eps = 1e-5;                     // open_clip LayerNorm default (EVA text: also 1e-5)
  // transformers' CLIP text names instead (the EVA-CLIP hub port): w is the checkpoint's root,
  // "text_model.embeddings.{token,position}_embedding.weight", "text_model.encoder.layers.N.{layer_norm1,
  // self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}", "text_model.final_layer_norm",
  // "text_projection.weight" [E, W] (a Linear without bias: the transposed open_clip matrix).
  bool hf_layout = false;
};

// Intermediates of one forward, for parity tests.
struct ClipTextStages {
  at::Tensor token_embedding;         // [B, C, W] (token embedding only, before + pos)
  std::vector<at::Tensor> block_out;  // each [B, C, W]
  at::Tensor ln_final;                // [B, C, W]
  at::Tensor pool_index;              // [B] int64
  at::Tensor pooled;                  // [B, W]
};

struct ClipTextTower {
  ClipTextConfig config;
  at::Tensor token_embedding;       // [V, W] in the compute dtype
  at::Tensor positional_embedding;  // [C, W] float32
  Transformer transformer;
  LayerNorm ln_final;
  Linear text_projection;           // [E, W] view of the [W, E] matrix
  at::Tensor attn_mask;             // [C, C] causal, float32

  // Every name above, relative to `w`'s prefix. InputError naming the key on a missing tensor or a
  // shape that disagrees with the config.
  static ClipTextTower load(const WeightSource& w, const ClipTextConfig& config);
  // ids [B, C] int64 (C = context_length) -> features [B, E] float32 (before any normalisation).
  at::Tensor forward(const at::Tensor& ids, ClipTextStages* stages = nullptr) const;
};

}  // namespace omnibind::experts::vit
