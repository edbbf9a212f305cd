#include "omnibind/experts/vit/vit_layers.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::vit {

using Kind = WeightSource::Kind;

namespace {
at::Tensor as_float(const at::Tensor& x) { return x.scalar_type() == at::kFloat ? x : x.to(at::kFloat); }
}  // namespace

// ---------------------------------------------------------------- Linear / LayerNorm

void Linear::load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t out, bool has_bias) {
  weight = w.get_matmul(prefix + ".weight", {out, in});
  bias = has_bias ? w.get(prefix + ".bias", {out}, Kind::Bias) : at::Tensor();
  compute = w.dtype();
}

void Linear::load_matrix(const WeightSource& w, const std::string& name, int64_t in, int64_t out) {
  weight = w.get_matmul(name, {in, out}).t();  // x @ P == linear(x, P^T); the view keeps P's storage
  bias = at::Tensor();
  compute = w.dtype();
}

at::Tensor Linear::forward(const at::Tensor& x) const {
  return mixed::linear(x, weight, bias, compute);
}

void LayerNorm::load(const WeightSource& w, const std::string& prefix, int64_t dim, double eps_) {
  weight = as_float(w.get(prefix + ".weight", {dim}, Kind::NormWeight));
  bias = as_float(w.get(prefix + ".bias", {dim}, Kind::Bias));
  eps = eps_;
}

void LayerNorm::load_rms(const WeightSource& w, const std::string& prefix, int64_t dim, double eps_) {
  weight = as_float(w.get(prefix + ".weight", {dim}, Kind::NormWeight));
  bias = at::Tensor();
  eps = eps_;
  rms = true;
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  if (rms) {
    // RMSnorm: variance = x.float().pow(2).mean(-1); x * rsqrt(variance + eps); weight * that.
    at::Tensor xf = as_float(x);
    return weight * (xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps));
  }
  return at::layer_norm(as_float(x), {weight.size(0)}, weight, bias, eps);
}

// ---------------------------------------------------------------- activations / MLP

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::GeluErf: return at::gelu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::QuickGelu: return x * at::sigmoid(x * 1.702);
  }
  return x;
}

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_tanh" || name == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (name == "quick_gelu") return Activation::QuickGelu;
  throw InputError("unknown activation '" + name + "' (expected gelu, gelu_tanh or quick_gelu)");
}

void Mlp::load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t hidden, Activation a,
               const std::string& fc1_name, const std::string& fc2_name) {
  fc1.load(w, prefix + "." + fc1_name, dim, hidden);
  fc2.load(w, prefix + "." + fc2_name, hidden, dim);
  act = a;
}

at::Tensor Mlp::forward(const at::Tensor& x) const { return fc2.forward(activate(fc1.forward(x), act)); }

// ---------------------------------------------------------------- attention

void Attention::load(const WeightSource& w, const std::string& prefix, const AttentionSpec& s) {
  require(s.heads > 0 && s.dim % s.heads == 0,
          w.family() + ": attention width " + std::to_string(s.dim) + " is not a multiple of " + std::to_string(s.heads) +
              " heads");
  heads = s.heads;
  scale_after_matmul = s.scale_after_matmul;
  const int64_t D = s.dim;
  const std::string p = prefix + ".";
  switch (s.layout) {
    case QkvLayout::Packed:
      qkv.weight = w.get_matmul(p + "in_proj_weight", {3 * D, D});
      qkv.compute = w.dtype();
      qkv.bias = w.get(p + "in_proj_bias", {3 * D}, Kind::Bias);
      break;
    case QkvLayout::FusedQV: {
      qkv.weight = w.get_matmul(p + s.qkv_name + ".weight", {3 * D, D});
      qkv.compute = w.dtype();
      at::Tensor qb = w.get(p + "q_bias", {D}, Kind::Bias), vb = w.get(p + "v_bias", {D}, Kind::Bias);
      qkv.bias = at::cat({qb, at::zeros_like(qb), vb});  // the k bias is structurally zero
      break;
    }
    case QkvLayout::Fused:
      qkv.load(w, p + s.qkv_name, D, 3 * D, /*has_bias=*/false);
      break;
    case QkvLayout::Separate:
      q.load(w, p + s.q_name, D, D, s.qv_bias);
      k.load(w, p + s.k_name, D, D, s.k_bias);
      v.load(w, p + s.v_name, D, D, s.qv_bias);
      break;
  }
  out.load(w, p + s.out_name, D, D);
}

at::Tensor Attention::attend(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_,
                             const at::Tensor& mask) const {
  const int64_t B = q_.size(0), H = q_.size(1), Lq = q_.size(2), hd = q_.size(3);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  // bf16 operands only where the CPU has native bf16 (mixed::matmul); float32 otherwise. Softmax fp32.
  const auto mm = out.compute;
  at::Tensor scores;
  if (scale_after_matmul) {
    scores = mixed::matmul(q_, k_.transpose(-2, -1), mm) * scale;
  } else {
    scores = mixed::matmul(q_ * scale, k_.transpose(-2, -1), mm);
  }
  if (mask.defined()) scores = scores + mask;
  at::Tensor probs = at::softmax(scores, -1);                   // [B, H, Lq, Lk]
  at::Tensor o = mixed::matmul(probs, v_, mm);                  // [B, H, Lq, hd]
  return o.transpose(1, 2).reshape({B, Lq, H * hd});
}

at::Tensor Attention::forward(const at::Tensor& x, const at::Tensor& mask) const {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2), hd = D / heads;
  at::Tensor q_, k_, v_;
  if (qkv.weight.defined()) {
    at::Tensor t = qkv.forward(x).view({B, L, 3, heads, hd}).permute({2, 0, 3, 1, 4});  // [3, B, H, L, hd]
    q_ = t[0];
    k_ = t[1];
    v_ = t[2];
  } else {
    q_ = q.forward(x).view({B, L, heads, hd}).transpose(1, 2);
    k_ = k.forward(x).view({B, L, heads, hd}).transpose(1, 2);
    v_ = v.forward(x).view({B, L, heads, hd}).transpose(1, 2);
  }
  return out.forward(attend(q_, k_, v_, mask));
}

at::Tensor Attention::forward_cross(const at::Tensor& query, const at::Tensor& kv) const {
  const int64_t B = query.size(0), Lq = query.size(1), Lk = kv.size(1), D = query.size(2), hd = D / heads;
  Linear lq, lk, lv;
  if (qkv.weight.defined()) {
    auto part = [&](int64_t i) {
      Linear l{qkv.weight.narrow(0, i * D, D), qkv.bias.defined() ? qkv.bias.narrow(0, i * D, D) : at::Tensor(),
               qkv.compute};
      return l;
    };
    lq = part(0);
    lk = part(1);
    lv = part(2);
  } else {
    lq = q;
    lk = k;
    lv = v;
  }
  at::Tensor q_ = lq.forward(query).view({B, Lq, heads, hd}).transpose(1, 2);
  at::Tensor k_ = lk.forward(kv).view({B, Lk, heads, hd}).transpose(1, 2);
  at::Tensor v_ = lv.forward(kv).view({B, Lk, heads, hd}).transpose(1, 2);
  return out.forward(attend(q_, k_, v_, at::Tensor()));
}

// ---------------------------------------------------------------- blocks

BlockSpec BlockSpec::open_clip(int64_t dim, int64_t heads, int64_t mlp_hidden, Activation act, double eps) {
  BlockSpec s;
  s.attn.dim = dim;
  s.attn.heads = heads;
  s.attn.layout = QkvLayout::Packed;
  s.mlp_hidden = mlp_hidden;
  s.act = act;
  s.eps = eps;
  return s;
}

void Block::load(const WeightSource& w, const std::string& prefix, const BlockSpec& s) {
  const int64_t D = s.attn.dim;
  const std::string p = prefix + ".";
  placement = s.norm;
  auto load_norm = [&](LayerNorm& n, const std::string& name) {
    if (s.rms_norm) n.load_rms(w, p + name, D, s.eps);
    else n.load(w, p + name, D, s.eps);
  };
  load_norm(norm1, s.norm1_name);
  attn.load(w, p + s.attn_name, s.attn);
  load_norm(norm2, s.norm2_name);
  mlp.load(w, p + s.mlp_name, D, s.mlp_hidden, s.act, s.fc1_name, s.fc2_name);
  ls1 = s.layer_scale1_name.empty() ? at::Tensor() : as_float(w.get(p + s.layer_scale1_name, {D}, Kind::NormWeight));
  ls2 = s.layer_scale2_name.empty() ? at::Tensor() : as_float(w.get(p + s.layer_scale2_name, {D}, Kind::NormWeight));
}

at::Tensor Block::forward(const at::Tensor& x, const at::Tensor& mask) const {
  auto scaled = [](at::Tensor t, const at::Tensor& g) { return g.defined() ? t * g : t; };
  if (placement == NormPlacement::Pre) {
    at::Tensor h = x + scaled(attn.forward(norm1.forward(x), mask), ls1);
    return h + scaled(mlp.forward(norm2.forward(h)), ls2);
  }
  at::Tensor h = x + scaled(norm1.forward(attn.forward(x, mask)), ls1);
  return h + scaled(norm2.forward(mlp.forward(h)), ls2);
}

void Transformer::load(const WeightSource& w, const std::string& prefix, int64_t depth, const BlockSpec& spec) {
  blocks.assign(static_cast<size_t>(depth), Block{});
  for (int64_t i = 0; i < depth; ++i) blocks[static_cast<size_t>(i)].load(w, prefix + "." + std::to_string(i), spec);
}

at::Tensor Transformer::forward(at::Tensor x, const at::Tensor& mask, std::vector<at::Tensor>* block_out) const {
  for (const auto& b : blocks) {
    x = b.forward(x, mask);
    if (block_out) block_out->push_back(x);
  }
  return x;
}

// ---------------------------------------------------------------- patch embedding, masks, pooling

void PatchEmbed::load(const WeightSource& w, const std::string& name, int64_t in_chans_, int64_t dim, int64_t patch_,
                      bool has_bias) {
  patch = patch_;
  in_chans = in_chans_;
  at::Tensor conv = w.get_matmul(name + ".weight", {dim, in_chans, patch, patch});
  proj.weight = conv.view({dim, in_chans * patch * patch});
  proj.compute = w.dtype();
  proj.bias = has_bias ? w.get(name + ".bias", {dim}, Kind::Bias) : at::Tensor();
}

at::Tensor PatchEmbed::forward(const at::Tensor& pixels) const {
  const int64_t B = pixels.size(0), C = pixels.size(1), gh = pixels.size(2) / patch, gw = pixels.size(3) / patch;
  // [B, C, gh*P, gw*P] -> [B, gh, gw, C, P, P] -> [B, gh*gw, C*P*P]: each row is one conv window.
  at::Tensor x = pixels.narrow(2, 0, gh * patch).narrow(3, 0, gw * patch);
  x = x.reshape({B, C, gh, patch, gw, patch}).permute({0, 2, 4, 1, 3, 5}).reshape({B, gh * gw, C * patch * patch});
  return proj.forward(as_float(x));
}

at::Tensor causal_mask(int64_t length) {
  return at::full({length, length}, -std::numeric_limits<float>::infinity(), at::kFloat).triu_(1);
}

at::Tensor first_argmax(const at::Tensor& ids) {
  // max value per row, then the smallest index holding it.
  at::Tensor mx = std::get<0>(ids.max(-1, /*keepdim=*/true));
  const int64_t L = ids.size(-1);
  at::Tensor pos = at::arange(L, ids.options().dtype(at::kLong)).expand_as(ids);
  at::Tensor big = at::full_like(pos, L);
  return at::where(ids == mx, pos, big).amin(-1);
}

}  // namespace omnibind::experts::vit
