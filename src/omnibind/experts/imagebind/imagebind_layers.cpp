#include "omnibind/experts/imagebind/imagebind_layers.h"

#include <ATen/ATen.h>

#include <cmath>

#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::imagebind {

using Kind = WeightSource::Kind;

namespace {
at::Tensor f32(const at::Tensor& t) { return !t.defined() || t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }
}  // namespace

void Linear::load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t out, bool has_bias) {
  weight = w.get_matmul(prefix + ".weight", {out, in});
  bias = has_bias ? w.get(prefix + ".bias", {out}, Kind::Bias) : at::Tensor();
  compute = w.dtype();
}

at::Tensor Linear::forward(const at::Tensor& x) const { return mixed::linear(x, weight, bias, compute); }

void LayerNorm::load(const WeightSource& w, const std::string& prefix, int64_t dim, double eps_) {
  weight = f32(w.get(prefix + ".weight", {dim}, Kind::NormWeight));
  bias = f32(w.get(prefix + ".bias", {dim}, Kind::Bias));
  eps = eps_;
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

void Attention::load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t heads_, bool bias_kv) {
  heads = heads_;
  in_proj.weight = w.get_matmul(prefix + ".in_proj_weight", {3 * dim, dim});
  in_proj.bias = w.get(prefix + ".in_proj_bias", {3 * dim}, Kind::Bias);
  in_proj.compute = w.dtype();
  if (bias_kv) {
    bias_k = f32(w.get(prefix + ".bias_k", {1, 1, dim}, Kind::Embedding));
    bias_v = f32(w.get(prefix + ".bias_v", {1, 1, dim}, Kind::Embedding));
  }
  out_proj.load(w, prefix + ".out_proj", dim, dim, true);
}

at::Tensor Attention::forward(const at::Tensor& x, const at::Tensor& mask) const {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2), hd = D / heads;
  // [B, L, 3D] -> 3 x [B, H, L, hd]
  auto qkv = in_proj.forward(x).view({B, L, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  if (bias_k.defined()) {
    // The learned key/value is one extra (already projected) position: [B, H, L+1, hd].
    k = at::cat({k, bias_k.view({1, heads, 1, hd}).expand({B, heads, 1, hd})}, 2);
    v = at::cat({v, bias_v.view({1, heads, 1, hd}).expand({B, heads, 1, hd})}, 2);
  }
  // As torch 1.13's MHA: q scaled by 1/sqrt(hd) before q k^T, additive mask, softmax, @ v.
  q = q * (1.0 / std::sqrt(static_cast<double>(hd)));
  const auto mm = in_proj.compute;
  at::Tensor scores = mixed::matmul(q, k.transpose(-2, -1), mm);  // [B, H, L, S]
  if (mask.defined()) scores.add_(mask);
  at::Tensor out = mixed::matmul(at::softmax(scores, -1), v, mm);  // [B, H, L, hd]
  return out_proj.forward(out.transpose(1, 2).reshape({B, L, D}));
}

void Block::load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t heads, bool bias_kv) {
  attn.load(w, prefix + ".attn", dim, heads, bias_kv);
  norm_1.load(w, prefix + ".norm_1", dim, 1e-6);
  fc1.load(w, prefix + ".mlp.fc1", dim, 4 * dim, true);
  fc2.load(w, prefix + ".mlp.fc2", 4 * dim, dim, true);
  norm_2.load(w, prefix + ".norm_2", dim, 1e-6);
}

at::Tensor Block::forward(const at::Tensor& x, const at::Tensor& mask) const {
  at::Tensor h = x + attn.forward(norm_1.forward(x), mask);
  return h + fc2.forward(at::gelu(fc1.forward(norm_2.forward(h))));
}

void Trunk::load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t depth, int64_t heads,
                 bool pre, bool bias_kv) {
  has_pre_ln = pre;
  if (pre) pre_ln.load(w, prefix + ".pre_transformer_layer.0", dim, 1e-6);
  blocks.resize(depth);
  for (int64_t i = 0; i < depth; ++i)
    blocks[i].load(w, prefix + ".blocks." + std::to_string(i), dim, heads, bias_kv);
}

at::Tensor Trunk::forward(at::Tensor x, const at::Tensor& mask) const {
  if (has_pre_ln) x = pre_ln.forward(x);
  for (const auto& b : blocks) x = b.forward(x, mask);
  return x;
}

}  // namespace omnibind::experts::imagebind
