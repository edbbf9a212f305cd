#include "omnibind/experts/uni3d/uni3d_model.h"

#include <ATen/ATen.h>

#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts::uni3d {
namespace {

// Fetches "point_encoder.<key>" as a float32 tensor of the expected shape.
class WeightReader {
 public:
  WeightReader(const tensor_io::StateDict& sd, at::ScalarType matmul_dtype) : sd_(sd), mm_(matmul_dtype) {}

  bool has(const std::string& key) const { return sd_.contains("point_encoder." + key); }

  at::Tensor get(const std::string& key, std::vector<int64_t> shape) const {
    return stored(key, shape).to(at::kFloat).contiguous();  // copies when the file is not float32; zero-copy otherwise
  }

  // The tensor as the file stores it (any float dtype), shape-checked.
  at::Tensor stored(const std::string& key, const std::vector<int64_t>& shape) const {
    const std::string full = "point_encoder." + key;
    const auto& raw = sd_.at(full);
    at::Tensor t = tensor_io::to_tensor(raw);
    if (!at::isFloatingType(t.scalar_type()))
      throw InputError(sd_.source() + ": tensor '" + full + "' is not floating point");
    if (t.sizes().vec() != shape) {
      std::string want = "[";
      for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
      throw InputError(sd_.source() + ": tensor '" + full + "' has shape " + raw.shape_string() + ", expected " + want +
                       "]");
    }
    return t;
  }

  // A matmul weight (stored by mixed_matmul.h's rule) and its bias in the compute dtype.
  Linear linear(const std::string& prefix, int64_t out, int64_t in, bool bias = true, bool conv1d = false) const {
    Linear l;
    std::vector<int64_t> shape = {out, in};
    if (conv1d) shape.push_back(1);
    l.weight = mixed::stored_weight(stored(prefix + ".weight", shape), mm_).view({out, in});
    if (bias) l.bias = get(prefix + ".bias", {out}).to(mm_);
    l.compute = mm_;
    return l;
  }

  LayerNorm layer_norm(const std::string& prefix, int64_t d) const {
    return LayerNorm{get(prefix + ".weight", {d}), get(prefix + ".bias", {d})};
  }

  BatchNorm batch_norm(const std::string& prefix, int64_t c) const {
    return BatchNorm{get(prefix + ".weight", {c}), get(prefix + ".bias", {c}), get(prefix + ".running_mean", {c}),
                     get(prefix + ".running_var", {c})};
  }

 private:
  const tensor_io::StateDict& sd_;
  at::ScalarType mm_;
};

// y = x W^T + b by experts/mixed_matmul.h's rule, float32.
at::Tensor lin(const at::Tensor& x, const Linear& l) { return mixed::linear(x, l.weight, l.bias, l.compute); }

at::Tensor ln(const at::Tensor& x, const LayerNorm& n, double eps) {
  return at::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

at::Tensor bn(const at::Tensor& x, const BatchNorm& b, double eps) {
  // x [rows, C]; eval mode: (x - mean) / sqrt(var + eps) * w + b
  return at::batch_norm(x, b.weight, b.bias, b.running_mean, b.running_var, /*training=*/false, 0.1, eps,
                        /*cudnn_enabled=*/false);
}

}  // namespace

Uni3dModel Uni3dModel::load(const tensor_io::StateDict& sd, const Uni3dConfig& c, at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) throw InputError("Uni3D precision must be fp32 or bf16");
  WeightReader r(sd, dtype);
  if (!r.has("cls_token"))
    throw InputError(sd.source() + ": no 'point_encoder.*' tensors: not a Uni3D checkpoint (expected the dict under 'module')");
  // Depth is whatever the checkpoint holds; it must agree with the config.
  int64_t depth = 0;
  while (r.has("visual.blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
  if (depth != c.depth)
    throw InputError(sd.source() + ": checkpoint has " + std::to_string(depth) + " transformer blocks but the '" + c.name +
                     "' config expects " + std::to_string(c.depth) + " (wrong --size?)");
  const int64_t D = c.width, C = c.pc_encoder_dim, E = c.embed_dim, H = c.mlp_hidden;
  Uni3dModel m;
  m.config = c;
  m.compute = dtype;
  m.cls_token = r.get("cls_token", {1, 1, D});
  m.cls_pos = r.get("cls_pos", {1, 1, D});
  auto& e = m.encoder;
  e.first_conv_0 = r.linear("encoder.first_conv.0", 128, 6, true, true);
  e.first_conv_1 = r.batch_norm("encoder.first_conv.1", 128);
  e.first_conv_3 = r.linear("encoder.first_conv.3", 256, 128, true, true);
  e.second_conv_0 = r.linear("encoder.second_conv.0", 512, 512, true, true);
  e.second_conv_1 = r.batch_norm("encoder.second_conv.1", 512);
  e.second_conv_3 = r.linear("encoder.second_conv.3", C, 512, true, true);
  m.encoder2trans = r.linear("encoder2trans", D, C);
  m.pos_embed_0 = r.linear("pos_embed.0", 128, 3);
  m.pos_embed_2 = r.linear("pos_embed.2", D, 128);
  for (int64_t i = 0; i < depth; ++i) {
    const std::string p = "visual.blocks." + std::to_string(i) + ".";
    EvaBlock b;
    b.norm1 = r.layer_norm(p + "norm1", D);
    b.norm2 = r.layer_norm(p + "norm2", D);
    if (c.qkv_fused) {
      b.attn.qkv = r.linear(p + "attn.qkv", 3 * D, D, false);
      at::Tensor qb = r.get(p + "attn.q_bias", {D}), vb = r.get(p + "attn.v_bias", {D});
      b.attn.qkv_bias = at::cat({qb, at::zeros_like(qb), vb}).to(dtype);  // k bias is a zero buffer
    } else {
      b.attn.q_proj = r.linear(p + "attn.q_proj", D, D);
      b.attn.k_proj = r.linear(p + "attn.k_proj", D, D, false);
      b.attn.v_proj = r.linear(p + "attn.v_proj", D, D);
    }
    if (r.has(p + "attn.norm.weight")) b.attn.norm = r.layer_norm(p + "attn.norm", D);
    b.attn.proj = r.linear(p + "attn.proj", D, D);
    switch (c.mlp) {
      case MlpKind::Gelu:
        b.mlp.fc1 = r.linear(p + "mlp.fc1", H, D);
        b.mlp.fc2 = r.linear(p + "mlp.fc2", D, H);
        break;
      case MlpKind::Glu:
        b.mlp.fc1 = r.linear(p + "mlp.fc1", 2 * H, D);
        b.mlp.fc2 = r.linear(p + "mlp.fc2", D, H);
        break;
      case MlpKind::SwiGlu:
        b.mlp.fc1_g = r.linear(p + "mlp.fc1_g", H, D);
        b.mlp.fc1_x = r.linear(p + "mlp.fc1_x", H, D);
        b.mlp.norm = r.layer_norm(p + "mlp.norm", H);
        b.mlp.fc2 = r.linear(p + "mlp.fc2", D, H);
        break;
    }
    if (r.has(p + "gamma_1")) {
      b.gamma_1 = r.get(p + "gamma_1", {D});
      b.gamma_2 = r.get(p + "gamma_2", {D});
    }
    m.blocks.push_back(std::move(b));
  }
  // timm Eva with global_pool='avg': norm = Identity, fc_norm = LayerNorm (the reverse for 'token').
  if (r.has("visual.norm.weight")) m.norm = r.layer_norm("visual.norm", D);
  if (r.has("visual.fc_norm.weight")) m.fc_norm = r.layer_norm("visual.fc_norm", D);
  m.trans2embed = r.linear("trans2embed", E, D);
  return m;
}

at::Tensor Uni3dModel::forward(const at::Tensor& features, const at::Tensor& centers, Uni3dStages* stages) const {
  const auto& c = config;
  const int64_t B = features.size(0), G = features.size(1), K = features.size(2);
  const int64_t D = c.width, nh = c.heads, hd = D / nh;
  const double eps = c.ln_eps;

  // --- mini-PointNet over each group: [B*G*K, 6] -> [B, G, C]
  at::Tensor f = features.reshape({B * G * K, 6}).to(at::kFloat);
  const auto& e = encoder;
  at::Tensor h = at::relu(bn(lin(f, e.first_conv_0), e.first_conv_1, c.bn_eps));  // [BGK, 128]
  h = lin(h, e.first_conv_3).view({B * G, K, 256});                                // [BG, K, 256]
  at::Tensor global = std::get<0>(h.max(1));                                       // [BG, 256]
  // second_conv.0 on cat([global, h]) = W[:, :256] global + W[:, 256:] h + b: the global half
  // once per group instead of once per point.
  const at::Tensor& w0 = e.second_conv_0.weight;  // [512, 512]
  Linear w_global{w0.narrow(1, 0, 256), e.second_conv_0.bias, compute},
      w_local{w0.narrow(1, 256, 256), at::Tensor(), compute};
  at::Tensor g2 = lin(global, w_global).unsqueeze(1);  // [BG, 1, 512]
  at::Tensor h2 = (lin(h, w_local) + g2).view({B * G * K, 512});
  h2 = at::relu(bn(h2, e.second_conv_1, c.bn_eps));
  h2 = lin(h2, e.second_conv_3).view({B * G, K, c.pc_encoder_dim});
  at::Tensor group_features = std::get<0>(h2.max(1)).view({B, G, c.pc_encoder_dim});

  // --- tokens and positions
  at::Tensor tokens = lin(group_features, encoder2trans);                                           // [B, G, D]
  at::Tensor pos = lin(at::gelu(lin(centers.to(at::kFloat), pos_embed_0)), pos_embed_2);           // [B, G, D]
  at::Tensor x = at::cat({cls_token.expand({B, 1, D}), tokens}, 1) + at::cat({cls_pos.expand({B, 1, D}), pos}, 1);
  if (stages) {
    stages->group_features = group_features;
    stages->tokens = tokens;
    stages->pos = pos;
    stages->transformer_in = x;
  }

  // --- timm Eva blocks (called without rope, as Uni3D does)
  const int64_t N = G + 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (const auto& b : blocks) {
    at::Tensor y = ln(x, b.norm1, eps);
    at::Tensor q, k, v;
    if (b.attn.qkv.weight.defined()) {
      at::Tensor qkv = lin(y, Linear{b.attn.qkv.weight, b.attn.qkv_bias, compute});  // [B, N, 3D]
      qkv = qkv.view({B, N, 3, nh, hd}).permute({2, 0, 3, 1, 4});            // [3, B, nh, N, hd]
      q = qkv[0];
      k = qkv[1];
      v = qkv[2];
    } else {
      q = lin(y, b.attn.q_proj).view({B, N, nh, hd}).transpose(1, 2);
      k = lin(y, b.attn.k_proj).view({B, N, nh, hd}).transpose(1, 2);
      v = lin(y, b.attn.v_proj).view({B, N, nh, hd}).transpose(1, 2);
    }
    // The two attention matmuls by mixed::matmul's rule (bf16 only on native-bf16 CPUs); softmax fp32.
    at::Tensor scores = mixed::matmul(q * scale, k.transpose(-2, -1), compute);
    at::Tensor attn = at::softmax(scores, -1);                                             // [B, nh, N, N]
    at::Tensor o = mixed::matmul(attn, v, compute).transpose(1, 2).reshape({B, N, D});
    if (b.attn.norm.defined()) o = ln(o, b.attn.norm, eps);
    o = lin(o, b.attn.proj);
    x = b.gamma_1.defined() ? x + b.gamma_1 * o : x + o;

    y = ln(x, b.norm2, eps);
    at::Tensor m;
    switch (c.mlp) {
      case MlpKind::Gelu:
        m = lin(at::gelu(lin(y, b.mlp.fc1)), b.mlp.fc2);
        break;
      case MlpKind::Glu: {
        at::Tensor u = lin(y, b.mlp.fc1);  // [B, N, 2H]: silu(first half) * second half
        m = lin(at::silu(u.narrow(-1, 0, c.mlp_hidden)) * u.narrow(-1, c.mlp_hidden, c.mlp_hidden), b.mlp.fc2);
        break;
      }
      case MlpKind::SwiGlu:
        m = lin(ln(at::silu(lin(y, b.mlp.fc1_g)) * lin(y, b.mlp.fc1_x), b.mlp.norm, eps), b.mlp.fc2);
        break;
    }
    x = b.gamma_2.defined() ? x + b.gamma_2 * m : x + m;
    if (stages) stages->block_out.push_back(x);
  }

  // --- head: CLS row -> visual.norm -> visual.fc_norm -> trans2embed
  at::Tensor cls = x.select(1, 0);
  if (norm.defined()) cls = ln(cls, norm, eps);
  if (fc_norm.defined()) cls = ln(cls, fc_norm, eps);
  at::Tensor emb = lin(cls, trans2embed);
  if (stages) {
    stages->cls_fc_norm = cls;
    stages->embedding = emb;
  }
  return emb;
}

}  // namespace omnibind::experts::uni3d
