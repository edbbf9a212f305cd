// The building blocks of ImageBind's towers as plain structs (whisper.cpp style): each holds its
// tensors, named like the reference state dict, and a forward over ATen ops.
// Layout is batch-first [B, L, D] throughout (the reference runs its trunks as [L, B, D]; the maths
// is the same). Precision: activations, norms, softmax and residuals are float32; matmul weights are
// stored and multiplied by experts/mixed_matmul.h's one rule for the model's precision.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::imagebind {


struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined (bias=False in the reference)
  at::ScalarType compute = at::kFloat;  // the model's precision; set by load()
  void load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t out, bool has_bias);
  at::Tensor forward(const at::Tensor& x) const;  // [..., in] -> [..., out]
};

struct LayerNorm {
  at::Tensor weight, bias;  // [dim], float32
  double eps = 1e-6;        // 1e-6 in blocks/heads/vision pre-LN, 1e-5 (torch default) in the audio stem
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x) const;
};

// torch.nn.MultiheadAttention (self-attention, eval) with optional add_bias_kv: a learned key and
// value appended to the (projected) sequence, as audio uses.
struct Attention {
  int64_t heads = 1;
  Linear in_proj;             // in_proj_weight [3D, D] rows q | k | v, in_proj_bias [3D]
  at::Tensor bias_k, bias_v;  // [1, 1, D] float32, or undefined
  Linear out_proj;            // D -> D
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t heads, bool bias_kv);
  // x [B, L, D]; additive mask [L, L] (0 / -inf) or undefined -> [B, L, D]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask) const;
};

// BlockWithMasking without layer scale (ImageBind's trunks never enable it): pre-LN attention and
// MLP (fc1, erf GELU, fc2) with residuals; DropPath is the identity in eval.
struct Block {
  LayerNorm norm_1, norm_2;
  Attention attn;
  Linear fc1, fc2;  // mlp.fc1 D -> 4D, mlp.fc2 4D -> D
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t heads, bool bias_kv);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask) const;
};

// SimpleTransformer: optional pre-transformer LayerNorm, then the blocks.
struct Trunk {
  bool has_pre_ln = false;
  LayerNorm pre_ln;  // pre_transformer_layer.0
  std::vector<Block> blocks;
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t depth, int64_t heads,
            bool pre_ln, bool bias_kv);
  at::Tensor forward(at::Tensor x, const at::Tensor& mask) const;  // [B, L, D]
};

}  // namespace omnibind::experts::imagebind
