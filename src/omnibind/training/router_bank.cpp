#include "omnibind/training/router_bank.h"

#include "omnibind/training/slot_noise.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "omnibind/common/error.h"
#include "omnibind/training/bank_kernels.h"

namespace omnibind::training {

namespace bk = bank_kernels;

// Flat parameter layout of one router, torch's parameters() order:
// W1 [h1, in], b1, g1, be1 [h1], W2 [h2, h1], b2, g2, be2 [h2], W3 [S, h2], b3 [S].
struct RouterBank::Router {
  int64_t in = 0, h1 = 0, h2 = 0, S = 0;
  float scale = 1;
  int64_t off[kParams + 1] = {};
  std::vector<int64_t> shape[kParams];
  std::vector<float> p, g, m, v;
  int64_t steps[kParams] = {};
  std::vector<float> rm1, rv1, rm2, rv2;
  int64_t tracked1 = 0, tracked2 = 0;
  // activations and gradients of the current batch
  std::vector<float> x, xh1, r1, xh2, t2, sg, w, slots, u, norm, du, dw, dt2, dr1;
  std::vector<double> acc, acc2;
  std::vector<float> mean, invstd1, invstd2;
  double dec_loss = 0;
  bool dec_active = false;
  double noise_loss = 0;
  bool noise_active = false;
};

struct RouterBank::Pair {
  int64_t i = 0, j = 0;
  std::vector<float> logits, gl, dui, duj, cmax, cscale;
  std::vector<double> csum;
  double loss = 0;
};

const char* RouterBank::param_name(int i) {
  static const char* names[kParams] = {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight",
                                       "3.bias",   "4.weight", "4.bias", "6.weight", "6.bias"};
  return names[i];
}

RouterBank::RouterBank(std::vector<RouterSpec> specs, int64_t out_dim, RouterBankOptions options)
    : specs_(std::move(specs)), D_(out_dim), o_(options) {
  require(!specs_.empty() && D_ > 0, "RouterBank: needs at least one router and a positive output width");
  bank_.resize(specs_.size());
  for (size_t k = 0; k < specs_.size(); ++k) {
    const RouterSpec& s = specs_[k];
    require(s.in > 0 && s.hidden1 > 0 && s.hidden2 > 0 && s.slots > 0, "RouterBank: every router size must be positive");
    Router& r = bank_[k];
    r.in = s.in, r.h1 = s.hidden1, r.h2 = s.hidden2, r.S = s.slots;
    r.scale = static_cast<float>(s.score_scale);
    r.shape[0] = {r.h1, r.in}, r.shape[1] = {r.h1}, r.shape[2] = {r.h1}, r.shape[3] = {r.h1};
    r.shape[4] = {r.h2, r.h1}, r.shape[5] = {r.h2}, r.shape[6] = {r.h2}, r.shape[7] = {r.h2};
    r.shape[8] = {r.S, r.h2}, r.shape[9] = {r.S};
    for (int i = 0; i < kParams; ++i) {
      int64_t n = 1;
      for (int64_t d : r.shape[i]) n *= d;
      r.off[i + 1] = r.off[i] + n;
    }
    const int64_t total = r.off[kParams];
    r.p.assign(total, 0.f), r.g.assign(total, 0.f), r.m.assign(total, 0.f), r.v.assign(total, 0.f);
    std::fill(r.p.begin() + r.off[2], r.p.begin() + r.off[3], 1.f);  // BN weights 1
    std::fill(r.p.begin() + r.off[6], r.p.begin() + r.off[7], 1.f);
    r.rm1.assign(r.h1, 0.f), r.rv1.assign(r.h1, 1.f), r.rm2.assign(r.h2, 0.f), r.rv2.assign(r.h2, 1.f);
    if (s.modality == "text") text_ = static_cast<int64_t>(k);
  }
  for (int64_t i = 0; i < routers(); ++i)
    for (int64_t j = i + 1; j < routers(); ++j) {
      Pair pr;
      pr.i = i, pr.j = j;
      pairs_.push_back(std::move(pr));
    }
}

RouterBank::~RouterBank() = default;
RouterBank::RouterBank(RouterBank&&) noexcept = default;
RouterBank& RouterBank::operator=(RouterBank&&) noexcept = default;

void RouterBank::set_router(int64_t k, const std::vector<std::pair<std::string, at::Tensor>>& named) {
  require(k >= 0 && k < routers(), "RouterBank::set_router: router out of range");
  Router& r = bank_[static_cast<size_t>(k)];
  auto find = [&](const std::string& name) -> at::Tensor {
    for (const auto& [n, t] : named)
      if (n == name) return t.detach();
    throw InputError("RouterBank::set_router: no tensor '" + name + "'");
  };
  auto copy_into = [&](float* dst, const std::string& name, int64_t numel) {
    const at::Tensor t = find(name).to(at::kFloat).contiguous();
    require(t.numel() == numel, "RouterBank::set_router: '" + name + "' has " + std::to_string(t.numel()) + " values, expected " +
                                    std::to_string(numel));
    std::memcpy(dst, t.data_ptr<float>(), sizeof(float) * static_cast<size_t>(numel));
  };
  for (int i = 0; i < kParams; ++i) copy_into(r.p.data() + r.off[i], param_name(i), r.off[i + 1] - r.off[i]);
  copy_into(r.rm1.data(), "1.running_mean", r.h1);
  copy_into(r.rv1.data(), "1.running_var", r.h1);
  copy_into(r.rm2.data(), "4.running_mean", r.h2);
  copy_into(r.rv2.data(), "4.running_var", r.h2);
  r.tracked1 = find("1.num_batches_tracked").item<int64_t>();
  r.tracked2 = find("4.num_batches_tracked").item<int64_t>();
  std::fill(r.g.begin(), r.g.end(), 0.f);
  std::fill(r.m.begin(), r.m.end(), 0.f);
  std::fill(r.v.begin(), r.v.end(), 0.f);
  std::fill(std::begin(r.steps), std::end(r.steps), 0);
}

namespace {
at::Tensor copy_out(const float* src, const std::vector<int64_t>& shape) {
  at::Tensor t = at::empty(shape, at::kFloat);
  std::memcpy(t.data_ptr<float>(), src, sizeof(float) * static_cast<size_t>(t.numel()));
  return t;
}
}  // namespace

std::vector<std::pair<std::string, at::Tensor>> RouterBank::router_state(int64_t k, const std::string& prefix) const {
  require(k >= 0 && k < routers(), "RouterBank::router_state: router out of range");
  const Router& r = bank_[static_cast<size_t>(k)];
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (int i = 0; i < kParams; ++i) out.emplace_back(prefix + param_name(i), copy_out(r.p.data() + r.off[i], r.shape[i]));
  out.emplace_back(prefix + "1.running_mean", copy_out(r.rm1.data(), {r.h1}));
  out.emplace_back(prefix + "1.running_var", copy_out(r.rv1.data(), {r.h1}));
  out.emplace_back(prefix + "1.num_batches_tracked", at::full({}, r.tracked1, at::kLong));
  out.emplace_back(prefix + "4.running_mean", copy_out(r.rm2.data(), {r.h2}));
  out.emplace_back(prefix + "4.running_var", copy_out(r.rv2.data(), {r.h2}));
  out.emplace_back(prefix + "4.num_batches_tracked", at::full({}, r.tracked2, at::kLong));
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> RouterBank::gradients(int64_t k) const {
  require(k >= 0 && k < routers(), "RouterBank::gradients: router out of range");
  const Router& r = bank_[static_cast<size_t>(k)];
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (int i = 0; i < kParams; ++i) out.emplace_back(param_name(i), copy_out(r.g.data() + r.off[i], r.shape[i]));
  return out;
}

void RouterBank::set_adam_state(int64_t k, int i, const AdamState& s) {
  require(k >= 0 && k < routers() && i >= 0 && i < kParams, "RouterBank::set_adam_state: out of range");
  Router& r = bank_[static_cast<size_t>(k)];
  const int64_t n = r.off[i + 1] - r.off[i];
  r.steps[i] = s.step;
  for (auto [t, dst] : {std::pair<const at::Tensor*, float*>{&s.exp_avg, r.m.data() + r.off[i]}, {&s.exp_avg_sq, r.v.data() + r.off[i]}}) {
    if (!t->defined()) {
      std::fill(dst, dst + n, 0.f);
      continue;
    }
    const at::Tensor c = t->detach().to(at::kFloat).contiguous();
    require(c.numel() == n, std::string("RouterBank::set_adam_state: moments of '") + param_name(i) + "' have the wrong size");
    std::memcpy(dst, c.data_ptr<float>(), sizeof(float) * static_cast<size_t>(n));
  }
}

RouterBank::AdamState RouterBank::adam_state(int64_t k, int i) const {
  require(k >= 0 && k < routers() && i >= 0 && i < kParams, "RouterBank::adam_state: out of range");
  const Router& r = bank_[static_cast<size_t>(k)];
  AdamState s;
  s.step = r.steps[i];
  s.exp_avg = copy_out(r.m.data() + r.off[i], r.shape[i]);
  s.exp_avg_sq = copy_out(r.v.data() + r.off[i], r.shape[i]);
  return s;
}

void RouterBank::set_data(std::vector<at::Tensor> x, std::vector<at::Tensor> slots, at::Tensor family, at::Tensor family_mask) {
  require(static_cast<int64_t>(x.size()) == routers() && static_cast<int64_t>(slots.size()) == routers(),
          "RouterBank::set_data: one input and one slot tensor per router");
  const int64_t T = x[0].size(0);
  for (int64_t k = 0; k < routers(); ++k) {
    const Router& r = bank_[static_cast<size_t>(k)];
    const at::Tensor& a = x[static_cast<size_t>(k)];
    const at::Tensor& s = slots[static_cast<size_t>(k)];
    require(a.scalar_type() == at::kFloat && a.is_contiguous() && a.dim() == 2 && a.size(0) == T && a.size(1) == r.in,
            "RouterBank::set_data: router inputs of '" + specs_[static_cast<size_t>(k)].modality + "' must be float32 [T, " +
                std::to_string(r.in) + "] contiguous");
    require(s.scalar_type() == at::kFloat && s.is_contiguous() && s.dim() == 3 && s.size(0) == T && s.size(1) == r.S &&
                s.size(2) == D_,
            "RouterBank::set_data: slot embeddings of '" + specs_[static_cast<size_t>(k)].modality + "' must be float32 [T, " +
                std::to_string(r.S) + ", " + std::to_string(D_) + "] contiguous");
  }
  if (family.defined()) {
    require(text_ >= 0, "RouterBank::set_data: decoupling needs a text router");
    require(family.dim() == 1 && family.size(0) == T, "RouterBank::set_data: family must be [T]");
    require(family_mask.defined() && family_mask.dim() == 2 && family_mask.size(0) == bank_[static_cast<size_t>(text_)].S,
            "RouterBank::set_data: family_mask must be [S_text, families]");
    family_ = family.to(at::kLong).contiguous();
    family_mask_ = family_mask.to(at::kFloat).contiguous();
    const int64_t F = family_mask_.size(1);
    require(family_.numel() == 0 || family_.max().item<int64_t>() < F, "RouterBank::set_data: family id out of range");
  } else {
    family_ = at::Tensor();
    family_mask_ = at::Tensor();
  }
  noise_.assign(slots.size(), at::Tensor());
  noise_routers_ = 0;
  if (o_.noise_weight > 0)
    for (size_t k = 0; k < slots.size(); ++k) {
      noise_[k] = slot_noise_variance(slots[k]);
      if (noise_[k].defined()) noise_[k] = noise_[k].to(at::kFloat).contiguous(), ++noise_routers_;
    }
  x_ = std::move(x);
  slots_ = std::move(slots);
}

void RouterBank::reserve(int64_t rows) {
  if (rows <= rows_) return;
  rows_ = rows;
  const size_t B = static_cast<size_t>(rows), D = static_cast<size_t>(D_);
  for (Router& r : bank_) {
    const size_t in = static_cast<size_t>(r.in), h1 = static_cast<size_t>(r.h1), h2 = static_cast<size_t>(r.h2),
                 S = static_cast<size_t>(r.S);
    r.x.assign(B * in, 0.f);
    r.xh1.assign(B * h1, 0.f);
    r.r1.assign(B * h1, 0.f);
    r.dr1.assign(B * h1, 0.f);
    r.xh2.assign(B * h2, 0.f);
    r.t2.assign(B * h2, 0.f);
    r.dt2.assign(B * h2, 0.f);
    r.sg.assign(B * S, 0.f);
    r.w.assign(B * S, 0.f);
    r.dw.assign(B * S, 0.f);
    r.slots.assign(B * S * D, 0.f);
    r.u.assign(B * D, 0.f);
    r.du.assign(B * D, 0.f);
    r.norm.assign(B, 0.f);
    const size_t C = std::max({h1, h2, S, in});
    r.acc.assign(C, 0.0);
    r.acc2.assign(C, 0.0);
    r.mean.assign(C, 0.f);
    r.invstd1.assign(h1, 0.f);
    r.invstd2.assign(h2, 0.f);
  }
  for (Pair& p : pairs_) {
    p.logits.assign(B * B, 0.f);
    p.gl.assign(B * B, 0.f);
    p.dui.assign(B * D, 0.f);
    p.duj.assign(B * D, 0.f);
    p.cmax.assign(B, 0.f);
    p.cscale.assign(B, 0.f);
    p.csum.assign(B, 0.0);
  }
}

double RouterBank::forward_backward(const int64_t* rows, int64_t B, bool update) {
  reserve(B);
  const int64_t D = D_;
  const int64_t n_routers = routers(), n_pairs = static_cast<int64_t>(pairs_.size());
  const float inv_t = static_cast<float>(1.0 / o_.temperature);
  const double pair_weight = n_pairs > 0 ? o_.align_weight / static_cast<double>(n_pairs) : 0.0;

  // ---- phase 1: every router's forward to its unified embedding u [B, D] --------------------------------
  auto forward = [&](int64_t k) {
    Router& r = bank_[static_cast<size_t>(k)];
    const float* P = r.p.data();
    const float* X = x_[static_cast<size_t>(k)].data_ptr<float>();
    const float* SL = slots_[static_cast<size_t>(k)].data_ptr<float>();
    const int64_t in = r.in, h1 = r.h1, h2 = r.h2, S = r.S;
    for (int64_t i = 0; i < B; ++i) {
      std::memcpy(r.x.data() + i * in, X + rows[i] * in, sizeof(float) * in);
      std::memcpy(r.slots.data() + i * S * D, SL + rows[i] * S * D, sizeof(float) * S * D);
    }
    // z1 = x W1^T + b1 -> BN1 (x_hat in xh1) -> r1 = relu(g1 x_hat + be1)
    float* xh1 = r.xh1.data();
    for (int64_t i = 0; i < B; ++i) std::memcpy(xh1 + i * h1, P + r.off[1], sizeof(float) * h1);
    bk::gemm(false, true, B, h1, in, 1.f, r.x.data(), in, P + r.off[0], in, 1.f, xh1, h1);
    bk::batch_norm_forward(xh1, B, h1, o_.bn_eps, o_.bn_momentum, r.rm1.data(), r.rv1.data(), r.acc.data(), r.acc2.data(),
                           r.mean.data(), r.invstd1.data());
    ++r.tracked1;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < h1; ++j) r.r1[i * h1 + j] = std::max(P[r.off[2] + j] * xh1[i * h1 + j] + P[r.off[3] + j], 0.f);
    // z2 = r1 W2^T + b2 -> BN2 -> t2 = tanh(g2 x_hat + be2)
    float* xh2 = r.xh2.data();
    for (int64_t i = 0; i < B; ++i) std::memcpy(xh2 + i * h2, P + r.off[5], sizeof(float) * h2);
    bk::gemm(false, true, B, h2, h1, 1.f, r.r1.data(), h1, P + r.off[4], h1, 1.f, xh2, h2);
    bk::batch_norm_forward(xh2, B, h2, o_.bn_eps, o_.bn_momentum, r.rm2.data(), r.rv2.data(), r.acc.data(), r.acc2.data(),
                           r.mean.data(), r.invstd2.data());
    ++r.tracked2;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < h2; ++j) r.t2[i * h2 + j] = std::tanh(P[r.off[6] + j] * xh2[i * h2 + j] + P[r.off[7] + j]);
    // z3 = t2 W3^T + b3 -> sg = sigmoid(z3) -> w = softmax(sg * scale)
    float* sg = r.sg.data();
    for (int64_t i = 0; i < B; ++i) std::memcpy(sg + i * S, P + r.off[9], sizeof(float) * S);
    bk::gemm(false, true, B, S, h2, 1.f, r.t2.data(), h2, P + r.off[8], h2, 1.f, sg, S);
    for (int64_t i = 0; i < B; ++i) {
      float* s = sg + i * S;
      float* w = r.w.data() + i * S;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < S; ++j) {
        s[j] = 1.f / (1.f + std::exp(-s[j]));
        mx = std::max(mx, s[j] * r.scale);
      }
      double sum = 0;
      for (int64_t j = 0; j < S; ++j) {
        w[j] = std::exp(s[j] * r.scale - mx);
        sum += w[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < S; ++j) w[j] *= inv;
      // u = normalise(sum_s w_s slot_s)
      float* u = r.u.data() + i * D;
      const float* sl = r.slots.data() + i * S * D;
      std::fill(u, u + D, 0.f);
      for (int64_t j = 0; j < S; ++j)
        for (int64_t d = 0; d < D; ++d) u[d] += w[j] * sl[j * D + d];
      r.norm[i] = bk::normalize_row(u, D);
    }
  };

  // ---- phase 2: InfoNCE of every modality pair, gradients w.r.t. both sides ----------------------------
  auto pair_loss = [&](int64_t q) {
    Pair& p = pairs_[static_cast<size_t>(q)];
    const float* a = bank_[static_cast<size_t>(p.i)].u.data();
    const float* b = bank_[static_cast<size_t>(p.j)].u.data();
    p.loss =
        bk::info_nce(a, b, B, D, inv_t, pair_weight, p.logits.data(), p.gl.data(), p.cmax.data(), p.cscale.data(), p.csum.data());
    bk::info_nce_input_gradients(p.gl.data(), a, b, B, D, inv_t, p.dui.data(), p.duj.data());
  };

  // ---- phase 3: every router's backward (and the decoupling term of the text router) -------------------
  auto backward = [&](int64_t k) {
    Router& r = bank_[static_cast<size_t>(k)];
    const float* P = r.p.data();
    float* G = r.g.data();
    const int64_t in = r.in, h1 = r.h1, h2 = r.h2, S = r.S;
    // du: the pairs' contributions, in pair order
    float* du = r.du.data();
    std::fill(du, du + B * D, 0.f);
    const bool align_trains = !(o_.align_unidentified_only && S >= 3);
    for (const Pair& p : pairs_) {
      if (!align_trains) break;
      const float* src = p.i == k ? p.dui.data() : p.j == k ? p.duj.data() : nullptr;
      if (!src) continue;
      for (int64_t i = 0; i < B * D; ++i) du[i] += src[i];
    }
    // dv = (du - u (u . du)) / |v|; dw[b, s] = slot_s . dv
    float* dw = r.dw.data();
    for (int64_t i = 0; i < B; ++i) {
      float* g = du + i * D;
      bk::normalize_row_backward(g, r.u.data() + i * D, r.norm[i], D);
      const float* sl = r.slots.data() + i * S * D;
      for (int64_t j = 0; j < S; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += static_cast<double>(sl[j * D + d]) * g[d];
        dw[i * S + j] = static_cast<float>(s);
      }
    }
    // L_dec: -log of the text router's family mass of the caption's source family, clipped at -log(margin)
    r.dec_loss = 0;
    r.dec_active = false;
    if (k == text_ && family_.defined()) {
      const int64_t* fam = family_.data_ptr<int64_t>();
      const float* F = family_mask_.data_ptr<float>();
      const int64_t NF = family_mask_.size(1);
      int64_t known = 0;
      for (int64_t i = 0; i < B; ++i) known += fam[rows[i]] >= 0 ? 1 : 0;
      if (known > 0) {
        r.dec_active = true;
        const bool clipped = o_.decoupling_margin < 1.0;
        const double log_margin = clipped ? std::log(o_.decoupling_margin) : 0.0;
        const double g = o_.decoupling_weight / static_cast<double>(known);
        std::vector<double> mass(static_cast<size_t>(NF)), mc(static_cast<size_t>(NF)), dm(static_cast<size_t>(NF));
        double sum = 0;
        for (int64_t i = 0; i < B; ++i) {
          const int64_t c = fam[rows[i]];
          if (c < 0) continue;
          const float* w = r.w.data() + i * S;
          double tot = 0;
          for (int64_t f = 0; f < NF; ++f) {
            double m = 0;
            for (int64_t j = 0; j < S; ++j) m += static_cast<double>(w[j]) * F[j * NF + f];
            mass[f] = m;
            mc[f] = std::max(m, 1e-8);
            tot += mc[f];
          }
          const double nll = -std::log(mc[c] / tot);
          const double l = clipped ? nll + log_margin : nll;
          if (clipped && !(l > 0)) continue;  // relu: no loss, no gradient
          sum += l;
          for (int64_t f = 0; f < NF; ++f) dm[f] = mass[f] >= 1e-8 ? g * ((f == c ? -1.0 / mc[c] : 0.0) + 1.0 / tot) : 0.0;
          for (int64_t j = 0; j < S; ++j) {
            double s = 0;
            for (int64_t f = 0; f < NF; ++f) s += dm[f] * F[j * NF + f];
            dw[i * S + j] += static_cast<float>(s);
          }
        }
        r.dec_loss = sum / static_cast<double>(known);
      }
    }
    // L_noise: mean_b(sum_s w^2 n) / U, U = mean_b(sum_s n) / S^2 (uniform routing's, a constant)
    r.noise_loss = 0;
    r.noise_active = false;
    if (noise_routers_ > 0 && noise_[static_cast<size_t>(k)].defined()) {
      const float* N = noise_[static_cast<size_t>(k)].data_ptr<float>();
      double uniform = 0, mixed = 0;
      for (int64_t i = 0; i < B; ++i) {
        const float* n = N + rows[i] * S;
        const float* w = r.w.data() + i * S;
        for (int64_t j = 0; j < S; ++j) uniform += n[j], mixed += static_cast<double>(w[j]) * w[j] * n[j];
      }
      uniform = std::max(uniform / static_cast<double>(B * S * S), 1e-12);
      r.noise_loss = mixed / static_cast<double>(B) / uniform;
      r.noise_active = true;
      const double c = 2.0 * o_.noise_weight / static_cast<double>(noise_routers_) / (static_cast<double>(B) * uniform);
      for (int64_t i = 0; i < B; ++i) {
        const float* n = N + rows[i] * S;
        const float* w = r.w.data() + i * S;
        for (int64_t j = 0; j < S; ++j) dw[i * S + j] += static_cast<float>(c * w[j] * n[j]);
      }
    }
    // softmax, scale, sigmoid backward -> dz3 (in dw)
    for (int64_t i = 0; i < B; ++i) {
      float* g = dw + i * S;
      const float* w = r.w.data() + i * S;
      const float* s = r.sg.data() + i * S;
      double dot = 0;
      for (int64_t j = 0; j < S; ++j) dot += static_cast<double>(g[j]) * w[j];
      for (int64_t j = 0; j < S; ++j) g[j] = w[j] * (g[j] - static_cast<float>(dot)) * r.scale * s[j] * (1.f - s[j]);
    }
    // Linear3: dW3 = dz3^T t2, db3 = sum dz3, dt2 = dz3 W3; tanh backward
    bk::gemm(true, false, S, h2, B, 1.f, dw, S, r.t2.data(), h2, 0.f, G + r.off[8], h2);
    bk::column_sums(dw, B, S, r.acc.data(), G + r.off[9]);
    float* dt2 = r.dt2.data();
    bk::gemm(false, false, B, h2, S, 1.f, dw, S, P + r.off[8], h2, 0.f, dt2, h2);
    for (int64_t i = 0; i < B * h2; ++i) dt2[i] *= 1.f - r.t2[i] * r.t2[i];
    // BN2 backward -> dz2 (in dt2); db2 = sum dz2; dW2 = dz2^T r1; dr1 = dz2 W2
    bk::batch_norm_backward(dt2, r.xh2.data(), B, h2, P + r.off[6], r.invstd2.data(), r.acc.data(), r.acc2.data(),
                            G + r.off[6], G + r.off[7]);
    bk::column_sums(dt2, B, h2, r.acc.data(), G + r.off[5]);
    bk::gemm(true, false, h2, h1, B, 1.f, dt2, h2, r.r1.data(), h1, 0.f, G + r.off[4], h1);
    float* dr1 = r.dr1.data();
    bk::gemm(false, false, B, h1, h2, 1.f, dt2, h2, P + r.off[4], h1, 0.f, dr1, h1);
    const float* r1 = r.r1.data();
    for (int64_t i = 0; i < B * h1; ++i) dr1[i] = r1[i] > 0.f ? dr1[i] : 0.f;  // ReLU mask, branch-free (vectorises)
    // BN1 backward -> dz1 (in dr1); db1 = sum dz1; dW1 = dz1^T x
    bk::batch_norm_backward(dr1, r.xh1.data(), B, h1, P + r.off[2], r.invstd1.data(), r.acc.data(), r.acc2.data(),
                            G + r.off[2], G + r.off[3]);
    bk::column_sums(dr1, B, h1, r.acc.data(), G + r.off[1]);
    bk::gemm(true, false, h1, in, B, 1.f, dr1, h1, r.x.data(), in, 0.f, G + r.off[0], in);
    if (update) adamw(r);
  };

  at::parallel_for(0, n_routers, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) forward(k);
  });
  at::parallel_for(0, n_pairs, 1, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) pair_loss(q);
  });
  at::parallel_for(0, n_routers, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) backward(k);
  });
  double loss = 0;
  for (const Pair& p : pairs_) loss += p.loss;
  if (n_pairs > 0) loss *= o_.align_weight / static_cast<double>(n_pairs);
  for (const Router& r : bank_)
    if (r.noise_active) loss += o_.noise_weight * r.noise_loss / static_cast<double>(noise_routers_);
  if (text_ >= 0 && bank_[static_cast<size_t>(text_)].dec_active)
    loss += o_.decoupling_weight * bank_[static_cast<size_t>(text_)].dec_loss;
  return loss;
}

void RouterBank::adamw(Router& r) {
  // torch keeps a step count per parameter tensor (set_adam_state can load them unequal)
  for (int t = 0; t < kParams; ++t) {
    const int64_t step = ++r.steps[t];
    const int64_t b = r.off[t];
    bk::adamw_update(r.p.data() + b, r.g.data() + b, r.m.data() + b, r.v.data() + b, r.off[t + 1] - b,
                     bk::AdamWStep(o_.lr, o_.weight_decay, o_.beta1, o_.beta2, o_.adam_eps, step));
  }
}

namespace {
at::Tensor long_rows(const at::Tensor& rows) { return rows.scalar_type() == at::kLong && rows.is_contiguous() ? rows : rows.to(at::kLong).contiguous(); }
}  // namespace

double RouterBank::run_batch(const at::Tensor& rows_in, bool update) {
  require(!x_.empty(), "RouterBank: set_data first");
  const at::Tensor rows = long_rows(rows_in);
  require(rows.numel() >= 2, "RouterBank: a batch needs at least 2 rows");
  const int64_t T = x_[0].size(0);
  require(rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < T, "RouterBank: row id out of range");
  bk::SingleThreadedBlas blas;
  return forward_backward(rows.data_ptr<int64_t>(), rows.numel(), update);
}

double RouterBank::loss_and_gradients(const at::Tensor& rows) { return run_batch(rows, false); }
double RouterBank::step(const at::Tensor& rows) { return run_batch(rows, true); }

double RouterBank::train_epoch(const at::Tensor& order_in, int64_t batch) {
  require(!x_.empty(), "RouterBank: set_data first");
  require(batch >= 2, "RouterBank::train_epoch: batch must be at least 2");
  const at::Tensor order = long_rows(order_in);
  const int64_t N = order.numel();
  if (N > 0) {
    const int64_t T = x_[0].size(0);
    require(order.min().item<int64_t>() >= 0 && order.max().item<int64_t>() < T, "RouterBank::train_epoch: row id out of range");
  }
  const int64_t* ids = order.data_ptr<int64_t>();
  bk::SingleThreadedBlas blas;
  double sum = 0;
  int64_t batches = 0;
  for (int64_t b = 0; b + 1 < N; b += batch) {
    const int64_t rows = std::min(batch, N - b);
    if (rows < 2) continue;
    sum += forward_backward(ids + b, rows, true);
    ++batches;
  }
  return sum / static_cast<double>(std::max<int64_t>(1, batches));
}

}  // namespace omnibind::training
