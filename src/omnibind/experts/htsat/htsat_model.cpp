#include "omnibind/experts/htsat/htsat_model.h"

#include <ATen/ATen.h>

#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::htsat {
namespace {

using Kind = WeightSource::Kind;

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

at::Tensor f32(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }

// --- loading -------------------------------------------------------------------------------

Linear load_linear(const WeightSource& w, const std::string& p, int64_t out, int64_t in, bool bias, at::ScalarType dt) {
  Linear l;
  l.weight = w.get_matmul(p + ".weight", {out, in}, dt);
  if (bias) l.bias = w.get(p + ".bias", {out}, Kind::Bias).to(dt);
  l.compute = dt;
  return l;
}

Conv2d load_conv(const WeightSource& w, const std::string& p, int64_t out, int64_t in, int64_t kh, int64_t kw) {
  return Conv2d{f32(w.get(p + ".weight", {out, in, kh, kw})), f32(w.get(p + ".bias", {out}, Kind::Bias))};
}

LayerNorm load_ln(const WeightSource& w, const std::string& p, int64_t d) {
  return LayerNorm{f32(w.get(p + ".weight", {d}, Kind::NormWeight)), f32(w.get(p + ".bias", {d}, Kind::Bias))};
}

BatchNorm load_bn(const WeightSource& w, const std::string& p, int64_t c) {
  BatchNorm b{f32(w.get(p + ".weight", {c}, Kind::NormWeight)), f32(w.get(p + ".bias", {c}, Kind::Bias)),
              f32(w.get(p + ".running_mean", {c}, Kind::Bias)), f32(w.get(p + ".running_var", {c}, Kind::NormWeight))};
  return b;  // num_batches_tracked is not read (see HtsatModel::unused_key_prefixes)
}

// Swin's relative_position_index for a ws x ws window: tokens row-major, index =
// (dh + ws - 1) * (2 ws - 1) + (dw + ws - 1) with d = coords[i] - coords[j].
at::Tensor build_relative_position_index(int64_t ws) {
  const int64_t N = ws * ws;
  at::Tensor idx = at::empty({N, N}, at::TensorOptions().dtype(at::kLong));
  auto a = idx.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      a[i][j] = (i / ws - j / ws + ws - 1) * (2 * ws - 1) + (i % ws - j % ws + ws - 1);
  return idx;
}

// SwinTransformerBlock's attn_mask for a cyclic shift s on an H x W map with ws windows: the
// shifted map is cut into 3 x 3 regions by the slices [0, -ws), [-ws, -s), [-s, end) on each
// axis; within a window, tokens of different regions get -100, others 0. [nW, N, N].
at::Tensor build_shift_mask(int64_t H, int64_t W, int64_t ws, int64_t s) {
  auto region = [&](int64_t v, int64_t n) { return v < n - ws ? 0 : (v < n - s ? 1 : 2); };
  const int64_t nh = H / ws, nw = W / ws, N = ws * ws;
  at::Tensor mask = at::zeros({nh * nw, N, N}, at::TensorOptions().dtype(at::kFloat));
  auto m = mask.accessor<float, 3>();
  std::vector<int64_t> label(N);
  for (int64_t wy = 0; wy < nh; ++wy)
    for (int64_t wx = 0; wx < nw; ++wx) {
      for (int64_t t = 0; t < N; ++t) label[t] = 3 * region(wy * ws + t / ws, H) + region(wx * ws + t % ws, W);
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j)
          if (label[i] != label[j]) m[wy * nw + wx][i][j] = -100.0f;
    }
  return mask;
}

// torch.roll(x, (-s, -s)) followed by window_partition, as one permutation of the R*R tokens:
// position p = (window, row, col in window) reads token ((h + s) % R, (w + s) % R). [R*R] int64.
at::Tensor build_window_order(int64_t R, int64_t ws, int64_t s) {
  const int64_t nw = R / ws, N = ws * ws;
  at::Tensor order = at::empty({R * R}, at::TensorOptions().dtype(at::kLong));
  auto a = order.accessor<int64_t, 1>();
  for (int64_t wy = 0; wy < nw; ++wy)
    for (int64_t wx = 0; wx < nw; ++wx)
      for (int64_t t = 0; t < N; ++t) {
        const int64_t h = wy * ws + t / ws, w = wx * ws + t % ws;
        a[(wy * nw + wx) * N + t] = ((h + s) % R) * R + (w + s) % R;
      }
  return order;
}

// Rows `order` of every item of x [B, L, D] -> [B, L, D] (one row gather over [B*L, D]).
at::Tensor gather_tokens(const at::Tensor& x, const at::Tensor& order) {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
  at::Tensor idx = order.unsqueeze(0) + at::arange(B, order.options()).mul_(L).unsqueeze(1);  // [B, L]
  return x.reshape({B * L, D}).index_select(0, idx.reshape({-1})).view({B, L, D});
}

// --- forward helpers ------------------------------------------------------------------------

// y = x W^T + b by experts/mixed_matmul.h's rule, float32.
at::Tensor lin(const at::Tensor& x, const Linear& l) { return mixed::linear(x, l.weight, l.bias, l.compute); }

at::Tensor ln(const at::Tensor& x, const LayerNorm& n, double eps) {
  return at::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

// Eval BatchNorm over dim 1.
at::Tensor bn(const at::Tensor& x, const BatchNorm& b, double eps) {
  return at::batch_norm(x, b.weight, b.bias, b.running_mean, b.running_var, /*training=*/false, 0.1, eps,
                        /*cudnn_enabled=*/false);
}

at::Tensor conv(const at::Tensor& x, const Conv2d& c, at::IntArrayRef stride) {
  return at::conv2d(x, c.weight, c.bias, stride);
}

// AFF attention branch: [pool] -> conv 1x1 -> BN -> ReLU -> conv 1x1 -> BN.
at::Tensor aff_branch(const at::Tensor& xa, const AffBranch& a, double eps) {
  at::Tensor h = a.pool ? xa.mean({2, 3}, /*keepdim=*/true) : xa;  // AdaptiveAvgPool2d(1)
  h = at::relu(bn(conv(h, a.conv_a, {1, 1}), a.bn_a, eps));
  return bn(conv(h, a.conv_b, {1, 1}), a.bn_b, eps);
}

// feature_fusion.AFF: xa = x + r; w = sigmoid(local_att(xa) + global_att(xa));
// out = 2 x w + 2 r (1 - w). (The reference duplicates a batch of one before the BatchNorms;
// eval BatchNorm is per item, so that changes nothing.)
at::Tensor aff(const at::Tensor& x, const at::Tensor& r, const PatchEmbed& p, double eps) {
  at::Tensor xa = x + r;
  at::Tensor wei = at::sigmoid(aff_branch(xa, p.local_att, eps) + aff_branch(xa, p.global_att, eps));
  return 2 * x * wei + 2 * r * (1 - wei);
}

// One Swin block on x [B, R*R, D].
at::Tensor swin_block(const at::Tensor& x, const SwinBlock& b, int64_t R, double eps) {
  const int64_t B = x.size(0), D = x.size(2), ws = b.window, nh = b.heads, hd = D / nh;
  const int64_t nwin = (R / ws) * (R / ws), N = ws * ws;
  // roll(-shift) + window_partition: [B, R*R, D] -> [B*nW, N, D] (windows row-major, tokens row-major)
  at::Tensor win = gather_tokens(ln(x, b.norm1, eps), b.window_order).view({B * nwin, N, D});
  at::Tensor qkv = lin(win, b.attn.qkv).view({B * nwin, N, 3, nh, hd}).permute({2, 0, 3, 1, 4});  // [3, B nW, nh, N, hd]
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));                                    // head_dim ** -0.5
  const auto mm = b.attn.qkv.compute;  // attention matmuls by mixed::matmul's rule, softmax in fp32
  at::Tensor q = qkv[0] * scale, k = qkv[1], v = qkv[2];
  at::Tensor scores = mixed::matmul(q, k.transpose(-2, -1), mm);  // [B nW, nh, N, N]
  scores.view({B, nwin, nh, N, N}).add_(b.attn_bias);
  at::Tensor attn = at::softmax(scores, -1);
  at::Tensor o = mixed::matmul(attn, v, mm).transpose(1, 2).reshape({B * nwin, N, D});
  o = lin(o, b.attn.proj);
  // window_reverse + roll(+shift)
  o = gather_tokens(o.view({B, R * R, D}), b.token_order);
  at::Tensor h = x + o;
  return h + lin(at::gelu(lin(ln(h, b.norm2, eps), b.mlp_fc1)), b.mlp_fc2);
}

at::Tensor patch_merging(const at::Tensor& x, const PatchMerging& m, int64_t R, double eps) {
  const int64_t B = x.size(0), D = x.size(2);
  at::Tensor g = x.view({B, R, R, D});
  auto pick = [&](int64_t r0, int64_t c0) { return g.slice(1, r0, R, 2).slice(2, c0, R, 2); };
  at::Tensor cat = at::cat({pick(0, 0), pick(1, 0), pick(0, 1), pick(1, 1)}, -1).reshape({B, (R / 2) * (R / 2), 4 * D});
  return lin(ln(cat, m.norm, eps), m.reduction);
}

}  // namespace

at::Tensor reshape_wav2img(const at::Tensor& x, const HtsatConfig& c) {
  const int64_t r = c.freq_ratio(), tT = c.spec_size * r, tF = c.spec_size / r;
  const int64_t T = x.size(2), F = x.size(3);
  if (T > tT || F > tF)
    throw InputError("HTSAT input of " + std::to_string(T) + " frames x " + std::to_string(F) + " mel bins exceeds " +
                     std::to_string(tT) + " x " + std::to_string(tF));
  at::Tensor y = x;
  // F.interpolate(mode='bicubic', align_corners=True): torch's own kernel (A = -0.75, source
  // positions dst * (in-1)/(out-1) in float32, clamped taps).
  if (T < tT) y = at::upsample_bicubic2d(y, {tT, y.size(3)}, /*align_corners=*/true);
  if (F < tF) y = at::upsample_bicubic2d(y, {y.size(2), tF}, /*align_corners=*/true);
  const int64_t B = y.size(0), C = y.size(1);
  // [B, C, T', F'] -> [B, C, F', T'] -> [B, C, F', r, T'/r] -> [B, C, r, F', T'/r] -> [B, C, r F', T'/r]
  return y.permute({0, 1, 3, 2}).reshape({B, C, tF, r, tT / r}).permute({0, 1, 3, 2, 4}).reshape({B, C, r * tF, tT / r});
}

HtsatModel HtsatModel::load(const WeightSource& w, const HtsatConfig& c, at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) throw InputError("HTSAT precision must be fp32 or bf16");
  c.validate("HTSAT config '" + c.name + "'");
  HtsatModel m;
  m.config = c;
  m.compute = dtype;
  const int64_t E = c.embed_dim, ps = c.patch;
  m.bn0 = load_bn(w, "bn0", c.mel_bins);
  auto& pe = m.patch_embed;
  pe.proj = load_conv(w, "patch_embed.proj", E, 1, ps, ps);
  pe.norm = load_ln(w, "patch_embed.norm", E);
  if (c.fusion) {
    const int64_t I = E / c.aff_r;
    const std::string f = "patch_embed.fusion_model.";
    pe.mel_conv2d = load_conv(w, "patch_embed.mel_conv2d", E, 1, ps, 3 * ps);
    pe.local_att = AffBranch{load_conv(w, f + "local_att.0", I, E, 1, 1), load_conv(w, f + "local_att.3", E, I, 1, 1),
                             load_bn(w, f + "local_att.1", I), load_bn(w, f + "local_att.4", E), false};
    pe.global_att = AffBranch{load_conv(w, f + "global_att.1", I, E, 1, 1), load_conv(w, f + "global_att.4", E, I, 1, 1),
                              load_bn(w, f + "global_att.2", I), load_bn(w, f + "global_att.5", E), true};
  }
  int64_t R = c.grid();
  for (int64_t i = 0; i < c.num_layers(); ++i) {
    BasicLayer L;
    L.dim = E << i;
    L.resolution = R;
    const int64_t D = L.dim, nh = c.heads[i], H = static_cast<int64_t>(static_cast<double>(D) * c.mlp_ratio);
    for (int64_t j = 0; j < c.depths[i]; ++j) {
      const std::string p = "layers." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      SwinBlock b;
      b.heads = nh;
      b.window = c.window;
      b.shift = j % 2 == 0 ? 0 : c.window / 2;
      if (R <= b.window) {  // "if window size is larger than input resolution, we don't partition windows"
        b.shift = 0;
        b.window = R;
      }
      const int64_t ws = b.window, N = ws * ws, tbl = (2 * ws - 1) * (2 * ws - 1);
      b.norm1 = load_ln(w, p + "norm1", D);
      b.attn.relative_position_bias_table = f32(w.get(p + "attn.relative_position_bias_table", {tbl, nh}, Kind::Embedding));
      if (w.has(p + "attn.relative_position_index")) {
        b.attn.relative_position_index = w.get_raw(p + "attn.relative_position_index", {N, N}).to(at::kLong);
        if (b.attn.relative_position_index.min().item<int64_t>() < 0 ||
            b.attn.relative_position_index.max().item<int64_t>() >= tbl)
          throw InputError("HTSAT checkpoint: '" + p + "attn.relative_position_index' indexes outside the bias table");
      } else {
        b.attn.relative_position_index = build_relative_position_index(ws);
      }
      b.attn.qkv = load_linear(w, p + "attn.qkv", 3 * D, D, true, dtype);
      b.attn.proj = load_linear(w, p + "attn.proj", D, D, true, dtype);
      b.norm2 = load_ln(w, p + "norm2", D);
      b.mlp_fc1 = load_linear(w, p + "mlp.fc1", H, D, true, dtype);
      b.mlp_fc2 = load_linear(w, p + "mlp.fc2", D, H, true, dtype);
      const int64_t nwin = (R / ws) * (R / ws);
      if (b.shift > 0) {
        // The reference uses the buffer it loaded; released checkpoints store it.
        b.attn_mask = w.has(p + "attn_mask") ? f32(w.get(p + "attn_mask", {nwin, N, N}, Kind::Bias))
                                             : build_shift_mask(R, R, ws, b.shift);
      }
      // [heads, N, N] bias from the table, plus the mask per window: [nW or 1, heads, N, N].
      at::Tensor bias = b.attn.relative_position_bias_table.index_select(0, b.attn.relative_position_index.reshape({-1}))
                            .view({N, N, nh})
                            .permute({2, 0, 1});
      b.window_order = build_window_order(R, ws, b.shift);
      b.token_order = at::argsort(b.window_order);
      b.attn_bias = (b.attn_mask.defined() ? bias.unsqueeze(0) + b.attn_mask.unsqueeze(1) : bias.unsqueeze(0)).contiguous();
      L.blocks.push_back(std::move(b));
    }
    if (i + 1 < c.num_layers()) {
      const std::string p = "layers." + std::to_string(i) + ".downsample.";
      L.has_downsample = true;
      L.downsample.norm = load_ln(w, p + "norm", 4 * D);
      L.downsample.reduction = load_linear(w, p + "reduction", 2 * D, 4 * D, false, dtype);
      R /= 2;
    }
    m.layers.push_back(std::move(L));
  }
  m.norm = load_ln(w, "norm", c.num_features());
  return m;
}

at::Tensor HtsatModel::forward(const at::Tensor& mel, const std::vector<bool>& longer, HtsatStages* stages) const {
  const auto& c = config;
  const double eps = c.ln_eps;
  if (mel.dim() != 4 || mel.size(1) != c.in_channels() || mel.size(3) != c.mel_bins || mel.size(2) < 1 ||
      mel.size(2) > c.spec_size * c.freq_ratio())
    throw InputError("HTSAT (" + c.name + ") expects a log-mel [B, " + std::to_string(c.in_channels()) + ", T <= " +
                     std::to_string(c.spec_size * c.freq_ratio()) + ", " + std::to_string(c.mel_bins) + "], got " +
                     shape_str(mel));
  const int64_t B = mel.size(0);
  if (!longer.empty() && static_cast<int64_t>(longer.size()) != B)
    throw InputError("HTSAT: " + std::to_string(longer.size()) + " 'longer' flags for a batch of " + std::to_string(B));
  std::vector<int64_t> longer_idx;
  for (int64_t i = 0; i < static_cast<int64_t>(longer.size()); ++i)
    if (longer[i]) longer_idx.push_back(i);
  if (!c.fusion && !longer_idx.empty()) throw InputError("HTSAT: 'longer' clips need the fusion model (CLAP_G)");

  // bn0 over the mel bins: x.transpose(1, 3) -> BatchNorm2d(F) -> back.
  at::Tensor x = bn(f32(mel).transpose(1, 3), bn0, c.bn_eps).transpose(1, 3);
  if (stages) stages->bn0_out = x;
  x = reshape_wav2img(x, c);  // [B, C, S, S]
  if (stages) stages->model_input = x;

  // patch_embed
  const int64_t ps = c.patch_stride;
  at::Tensor g = conv(x.narrow(1, 0, 1), patch_embed.proj, {ps, ps});  // [B, E, G, G]
  if (stages) stages->patch_embed_proj = g;
  if (c.fusion && !longer_idx.empty()) {
    const int64_t L = static_cast<int64_t>(longer_idx.size()), E = c.embed_dim, TW = g.size(3);
    at::Tensor idx = at::tensor(longer_idx, at::TensorOptions().dtype(at::kLong));
    at::Tensor local = x.index_select(0, idx).narrow(1, 1, 3).reshape({L * 3, 1, x.size(2), x.size(3)});
    at::Tensor lc = conv(local, patch_embed.mel_conv2d, {ps, 3 * ps});  // [3L, E, G, Wl]
    if (stages) stages->mel_conv2d_out = lc;
    const int64_t Gh = lc.size(2), Wl = lc.size(3);
    // [L, 3, E, G, Wl] -> [L, E, G, 3, Wl] -> [L, E, G, 3 Wl] (chunk-major along the width)
    lc = lc.view({L, 3, E, Gh, Wl}).permute({0, 2, 3, 1, 4}).reshape({L, E, Gh, 3 * Wl});
    if (3 * Wl < TW) lc = at::cat({lc, at::zeros({L, E, Gh, TW - 3 * Wl}, lc.options())}, -1);
    else lc = lc.narrow(3, 0, TW);
    at::Tensor fused = aff(g.index_select(0, idx), lc, patch_embed, c.bn_eps);
    if (stages) stages->fusion_out = fused;
    g = g.index_copy(0, idx, fused);
  }
  x = ln(g.flatten(2).transpose(1, 2), patch_embed.norm, eps);  // [B, G*G, E]
  if (stages) stages->patch_embed = x;

  for (const auto& L : layers) {
    for (const auto& b : L.blocks) x = swin_block(x, b, L.resolution, eps);
    if (L.has_downsample) x = patch_merging(x, L.downsample, L.resolution, eps);
    if (stages) stages->layer_out.push_back(x);
  }
  x = ln(x, norm, eps);
  // The reference regroups the final tokens by frequency before AdaptiveAvgPool1d: a permutation,
  // so the embedding is the mean of all final tokens.
  at::Tensor emb = x.mean(1);
  if (stages) {
    stages->final_norm = x;
    stages->embedding = emb;
  }
  return emb;
}

}  // namespace omnibind::experts::htsat
