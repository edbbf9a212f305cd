// Uni3D's point encoder (models/point_encoder.py PointcloudEncoder) with timm's Eva blocks, as
// plain structs whose members mirror the checkpoint keys under "point_encoder.".
// Shapes: B clouds, G groups, K points per group, D = width, E = embed_dim, C = pc_encoder_dim.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "omnibind/experts/uni3d/uni3d_config.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts::uni3d {

struct Linear {      // nn.Linear / Conv1d(k=1): weight [out, in], bias [out] (may be undefined)
  at::Tensor weight, bias;               // weight stored by experts/mixed_matmul.h's rule
  at::ScalarType compute = at::kFloat;  // the model's precision
};
struct LayerNorm {   // weight, bias [D]
  at::Tensor weight, bias;
  bool defined() const { return weight.defined(); }
};
struct BatchNorm {   // eval-mode BatchNorm1d: weight, bias, running_mean, running_var [C]
  at::Tensor weight, bias, running_mean, running_var;
};

// encoder.first_conv = [0] Conv1d(6,128) [1] BN(128) [2] ReLU [3] Conv1d(128,256);
// encoder.second_conv = [0] Conv1d(512,512) [1] BN(512) [2] ReLU [3] Conv1d(512,C).
struct GroupEncoder {
  Linear first_conv_0, first_conv_3, second_conv_0, second_conv_3;
  BatchNorm first_conv_1, second_conv_1;
};

// visual.blocks.N.attn: fused qkv [3D, D] + q_bias/v_bias (EVA-01, EVA-02 tiny/small) or
// q_proj/k_proj (no bias)/v_proj (EVA-02 base/large); optional inner norm; proj [D, D].
struct EvaAttention {
  Linear qkv;            // qkv.weight only; bias = cat(q_bias, 0, v_bias)
  at::Tensor qkv_bias;   // [3D] built at load time
  Linear q_proj, k_proj, v_proj;
  LayerNorm norm;        // scale_attn_inner (unused by Uni3D's sizes; kept for completeness)
  Linear proj;
};

// visual.blocks.N.mlp: fc1/fc2 (Gelu, Glu) or fc1_g/fc1_x/norm/fc2 (SwiGlu).
struct EvaMlp {
  Linear fc1, fc1_g, fc1_x, fc2;
  LayerNorm norm;
};

struct EvaBlock {
  LayerNorm norm1, norm2;
  EvaAttention attn;
  EvaMlp mlp;
  at::Tensor gamma_1, gamma_2;  // layer scale (init_values); undefined for Uni3D's sizes
};

// Intermediate results, for parity tests and debugging.
struct Uni3dStages {
  at::Tensor group_features;   // [B, G, C]
  at::Tensor tokens, pos;      // [B, G, D]
  at::Tensor transformer_in;   // [B, G+1, D]
  std::vector<at::Tensor> block_out;  // each [B, G+1, D]
  at::Tensor cls_fc_norm;      // [B, D]
  at::Tensor embedding;        // [B, E] before L2
};

struct Uni3dModel {
  Uni3dConfig config;
  at::ScalarType compute = at::kFloat;  // kFloat or kBFloat16: the precision (experts/mixed_matmul.h's rule)
  at::Tensor cls_token, cls_pos;        // [1, 1, D]
  GroupEncoder encoder;
  Linear encoder2trans;                 // [D, C]
  Linear pos_embed_0, pos_embed_2;      // Linear(3,128) -> GELU -> Linear(128,D)
  std::vector<EvaBlock> blocks;
  LayerNorm norm, fc_norm;              // visual.norm (Identity for avg pool), visual.fc_norm
  Linear trans2embed;                   // [E, D]

  // Loads every tensor the forward pass uses from a state dict (keys "point_encoder.*", an
  // optional "module." prefix is stripped by the caller). Checks shapes against the config;
  // InputError naming the key on any mismatch. dtype: kFloat or kBFloat16.
  static Uni3dModel load(const tensor_io::StateDict& sd, const Uni3dConfig& config, at::ScalarType dtype);

  // features [B, G, K, 6] (xyz relative to the centre, rgb), centers [B, G, 3] -> embedding
  // [B, E] before L2 normalisation. `stages` (optional) receives the intermediates.
  at::Tensor forward(const at::Tensor& features, const at::Tensor& centers, Uni3dStages* stages = nullptr) const;
};

}  // namespace omnibind::experts::uni3d
