// FOR THE LEAD TO RECONCILE with branch `eva18b` (see the header).
#include "omnibind/experts/eva18b_stream/eva18b_vision_fallback.h"

#include <ATen/ATen.h>

#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::eva18b_stream {
namespace {
using Kind = WeightSource::Kind;
at::Tensor as_float(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }
}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = as_float(x);
  return weight * (xf * at::rsqrt(xf.pow(2).mean({-1}, /*keepdim=*/true) + eps));
}

VisionBlock VisionBlock::load(const WeightSource& w, const std::string& prefix, const VisionConfig& c) {
  const int64_t W = c.width;
  VisionBlock b;
  b.eps = c.eps;
  b.norm1 = as_float(w.get(prefix + ".norm1.weight", {W}, Kind::NormWeight));
  b.norm2 = as_float(w.get(prefix + ".norm2.weight", {W}, Kind::NormWeight));
  b.attn.heads = c.heads();
  b.attn.scale_after_matmul = false;  // q * head_dim^-0.5 before q k^T
  b.attn.qkv.load(w, prefix + ".attn.qkv", W, 3 * W, /*has_bias=*/false);
  b.attn.out.load(w, prefix + ".attn.proj", W, W);
  b.mlp.load(w, prefix + ".mlp", W, c.mlp_hidden, vit::Activation::GeluErf, "fc1", "fc2");
  return b;
}

at::Tensor VisionBlock::forward(const at::Tensor& x_in) const {
  at::Tensor x = x_in + rms_norm(attn.forward(x_in), norm1, eps);
  return x + rms_norm(mlp.forward(x), norm2, eps);
}

VisionEnds VisionEnds::load(const WeightSource& w, const std::string& p, const VisionConfig& c) {
  const int64_t W = c.width, P = c.patch_size;
  VisionEnds e;
  e.config = c;
  e.patch_weight = as_float(w.get(p + "patch_embed.proj.weight", {W, 3, P, P}));
  e.patch_bias = as_float(w.get(p + "patch_embed.proj.bias", {W}, Kind::Bias));
  e.cls_token = as_float(w.get(p + "cls_token", {1, 1, W}, Kind::Embedding));
  e.pos_embed = as_float(w.get(p + "pos_embed", {1, c.tokens(), W}, Kind::Embedding));
  e.norm = as_float(w.get(p + "norm.weight", {W}, Kind::NormWeight));
  e.head.load(w, p + "head", W, c.embed_dim, /*has_bias=*/false);
  return e;
}

at::Tensor VisionEnds::embed(const at::Tensor& pixels) const {
  const int64_t B = pixels.size(0);
  at::Tensor patches = at::conv2d(as_float(pixels), patch_weight, patch_bias, {config.patch_size, config.patch_size});
  patches = patches.flatten(2).transpose(1, 2);  // [B, 256, W]
  return at::cat({cls_token.expand({B, 1, config.width}), patches}, 1) + pos_embed;
}

at::Tensor VisionEnds::finish(const at::Tensor& x) const {
  return head.forward(rms_norm(x, norm, config.eps).select(1, 0));
}

}  // namespace omnibind::experts::eva18b_stream
