#include "omnibind/training/head_bank.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "omnibind/common/error.h"
#include "omnibind/training/bank_kernels.h"

namespace omnibind::training {

namespace bk = bank_kernels;

// Flat parameter layout of one head: W1 [H, d], b1 [H], g1 [H], be1 [H], W2 [D, H], b2 [D], g2 [D], be2 [D].
struct HeadBank::Head {
  std::vector<float> p, g, m, v;
  std::vector<float> rm1, rv1, rm2, rv2;
  int64_t tracked = 0;  // BatchNorm num_batches_tracked (both BNs)
  int64_t steps = 0;    // AdamW step
};

struct HeadBank::Workspace {
  int64_t rows = 0;
  std::vector<float> x, y;        // [B, d], [B, D] the gathered batch
  std::vector<float> xh1, r, dr;  // [B, H]: BN1-normalised pre-activation, ReLU output, gradient
  std::vector<float> xh2, u, du;  // [B, D]: BN2-normalised, unit output, gradient
  std::vector<float> logits, gl;  // [B, B] logits and their gradient
  std::vector<float> norm;        // [B] clamped row norms of the BN2 output
  std::vector<double> s1, s2;     // [max(H, D)] column accumulators
  std::vector<float> mean;        // [max(H, D)]
  std::vector<float> invstd1, invstd2;  // [H], [D] BatchNorm inverse deviations (kept for the backward pass)
  std::vector<float> cmax, cscale;      // [B] column softmax
  std::vector<double> csum;             // [B]
};

namespace {

struct Offsets {
  int64_t w1, b1, g1, be1, w2, b2, g2, be2, total;
  Offsets(int64_t d, int64_t H, int64_t D) {
    w1 = 0;
    b1 = w1 + H * d;
    g1 = b1 + H;
    be1 = g1 + H;
    w2 = be1 + H;
    b2 = w2 + D * H;
    g2 = b2 + D;
    be2 = g2 + D;
    total = be2 + D;
  }
};

}  // namespace

HeadBank::HeadBank(int64_t heads, int64_t in_dim, int64_t hidden, int64_t out_dim, HeadBankOptions options)
    : heads_(heads), d_(in_dim), H_(hidden), D_(out_dim), o_(options) {
  require(heads > 0 && in_dim > 0 && hidden > 0 && out_dim > 0, "HeadBank: every size must be positive");
  const Offsets off(d_, H_, D_);
  bank_.resize(static_cast<size_t>(heads));
  for (Head& h : bank_) {
    h.p.assign(off.total, 0.f);
    h.g.assign(off.total, 0.f);
    h.m.assign(off.total, 0.f);
    h.v.assign(off.total, 0.f);
    h.rm1.assign(H_, 0.f);
    h.rv1.assign(H_, 1.f);
    h.rm2.assign(D_, 0.f);
    h.rv2.assign(D_, 1.f);
    std::fill(h.p.begin() + off.g1, h.p.begin() + off.g1 + H_, 1.f);
    std::fill(h.p.begin() + off.g2, h.p.begin() + off.g2 + D_, 1.f);
  }
}

HeadBank::~HeadBank() = default;
HeadBank::HeadBank(HeadBank&&) noexcept = default;
HeadBank& HeadBank::operator=(HeadBank&&) noexcept = default;

namespace {
struct Slot {
  const char* name;
  int64_t offset;
  std::vector<int64_t> shape;
};
}  // namespace

#define OMNIBIND_HEAD_SLOTS(off)                                                                           \
  std::vector<Slot> {                                                                                     \
    {"0.weight", off.w1, {H_, d_}}, {"0.bias", off.b1, {H_}}, {"1.weight", off.g1, {H_}}, {"1.bias", off.be1, {H_}}, \
        {"3.weight", off.w2, {D_, H_}}, {"3.bias", off.b2, {D_}}, {"4.weight", off.g2, {D_}},                 \
        {"4.bias", off.be2, {D_}}                                                                         \
  }

void HeadBank::set_head(int64_t k, const std::vector<std::pair<std::string, at::Tensor>>& named) {
  require(k >= 0 && k < heads_, "HeadBank::set_head: head out of range");
  Head& h = bank_[static_cast<size_t>(k)];
  const Offsets off(d_, H_, D_);
  auto find = [&](const std::string& name) -> at::Tensor {
    for (const auto& [n, t] : named)
      if (n == name) return t.detach().to(at::kFloat).contiguous();
    throw InputError("HeadBank::set_head: no tensor '" + name + "'");
  };
  auto copy_into = [&](float* dst, const std::string& name, int64_t numel) {
    at::Tensor t = find(name);
    require(t.numel() == numel, "HeadBank::set_head: '" + name + "' has " + std::to_string(t.numel()) + " values, expected " +
                                    std::to_string(numel));
    std::memcpy(dst, t.data_ptr<float>(), sizeof(float) * static_cast<size_t>(numel));
  };
  for (const Slot& s : OMNIBIND_HEAD_SLOTS(off)) {
    int64_t n = 1;
    for (int64_t v : s.shape) n *= v;
    copy_into(h.p.data() + s.offset, s.name, n);
  }
  copy_into(h.rm1.data(), "1.running_mean", H_);
  copy_into(h.rv1.data(), "1.running_var", H_);
  copy_into(h.rm2.data(), "4.running_mean", D_);
  copy_into(h.rv2.data(), "4.running_var", D_);
  for (const auto& [n, t] : named)
    if (n == "1.num_batches_tracked") h.tracked = t.item<int64_t>();
  std::fill(h.g.begin(), h.g.end(), 0.f);
  std::fill(h.m.begin(), h.m.end(), 0.f);
  std::fill(h.v.begin(), h.v.end(), 0.f);
  h.steps = 0;
}

std::vector<std::pair<std::string, at::Tensor>> HeadBank::head_state(int64_t k, const std::string& prefix) const {
  require(k >= 0 && k < heads_, "HeadBank::head_state: head out of range");
  const Head& h = bank_[static_cast<size_t>(k)];
  const Offsets off(d_, H_, D_);
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto copy = [](const float* src, const std::vector<int64_t>& shape) {
    at::Tensor t = at::empty(shape, at::kFloat);
    std::memcpy(t.data_ptr<float>(), src, sizeof(float) * static_cast<size_t>(t.numel()));
    return t;
  };
  for (const Slot& s : OMNIBIND_HEAD_SLOTS(off)) out.emplace_back(prefix + s.name, copy(h.p.data() + s.offset, s.shape));
  const at::Tensor tracked = at::full({}, h.tracked, at::kLong);
  out.emplace_back(prefix + "1.running_mean", copy(h.rm1.data(), {H_}));
  out.emplace_back(prefix + "1.running_var", copy(h.rv1.data(), {H_}));
  out.emplace_back(prefix + "1.num_batches_tracked", tracked.clone());
  out.emplace_back(prefix + "4.running_mean", copy(h.rm2.data(), {D_}));
  out.emplace_back(prefix + "4.running_var", copy(h.rv2.data(), {D_}));
  out.emplace_back(prefix + "4.num_batches_tracked", tracked.clone());
  return out;
}
#undef OMNIBIND_HEAD_SLOTS

double HeadBank::step_flops(int64_t rows) const {
  const double B = static_cast<double>(rows);
  // forward x W1^T, r W2^T; logits; backward dU = G Y, dW2, dR, dW1 (no input gradient)
  return 2 * B * (static_cast<double>(d_) * H_ + static_cast<double>(H_) * D_) + 2 * B * B * D_ + 2 * B * B * D_ +
         2 * B * (2.0 * H_ * D_ + static_cast<double>(H_) * d_);
}

HeadBank::Workspace& HeadBank::workspace(int thread, int64_t rows) {
  Workspace& ws = workspaces_.at(static_cast<size_t>(thread));
  if (ws.rows < rows) {
    const size_t B = static_cast<size_t>(rows), C = static_cast<size_t>(std::max(H_, D_));
    ws.rows = rows;
    ws.x.assign(B * d_, 0.f);
    ws.y.assign(B * D_, 0.f);
    ws.xh1.assign(B * H_, 0.f);
    ws.r.assign(B * H_, 0.f);
    ws.dr.assign(B * H_, 0.f);
    ws.xh2.assign(B * D_, 0.f);
    ws.u.assign(B * D_, 0.f);
    ws.du.assign(B * D_, 0.f);
    ws.logits.assign(B * B, 0.f);
    ws.gl.assign(B * B, 0.f);
    ws.norm.assign(B, 0.f);
    ws.s1.assign(C, 0.0);
    ws.s2.assign(C, 0.0);
    ws.mean.assign(C, 0.f);
    ws.invstd1.assign(H_, 0.f);
    ws.invstd2.assign(D_, 0.f);
    ws.cmax.assign(B, 0.f);
    ws.cscale.assign(B, 0.f);
    ws.csum.assign(B, 0.0);
  }
  return ws;
}

double HeadBank::step_head(Head& h, Workspace& ws, const float* x, const float* y, int64_t B) {
  const int64_t d = d_, H = H_, D = D_;
  const Offsets off(d, H, D);
  float* P = h.p.data();
  float* G = h.g.data();
  const float inv_t = static_cast<float>(1.0 / o_.temperature);

  // ---- forward -------------------------------------------------------------------------------
  // z1 = x W1^T + b1 -> BN1 (x_hat in xh1) -> r = relu(g1 x_hat + be1)
  float* xh1 = ws.xh1.data();
  for (int64_t i = 0; i < B; ++i) std::memcpy(xh1 + i * H, P + off.b1, sizeof(float) * H);
  bk::gemm(false, true, B, H, d, 1.f, x, d, P + off.w1, d, 1.f, xh1, H);
  bk::batch_norm_forward(xh1, B, H, o_.bn_eps, o_.bn_momentum, h.rm1.data(), h.rv1.data(), ws.s1.data(), ws.s2.data(),
                         ws.mean.data(), ws.invstd1.data());
  float* r = ws.r.data();
  {
    const float* g1 = P + off.g1;
    const float* be1 = P + off.be1;
    for (int64_t i = 0; i < B; ++i) {
      const float* xr = xh1 + i * H;
      float* rr = r + i * H;
      for (int64_t j = 0; j < H; ++j) rr[j] = std::max(g1[j] * xr[j] + be1[j], 0.f);
    }
  }
  // z2 = r W2^T + b2 -> BN2 -> o = g2 x_hat + be2 -> u = o / max(|o|, 1e-12)
  float* xh2 = ws.xh2.data();
  for (int64_t i = 0; i < B; ++i) std::memcpy(xh2 + i * D, P + off.b2, sizeof(float) * D);
  bk::gemm(false, true, B, D, H, 1.f, r, H, P + off.w2, H, 1.f, xh2, D);
  bk::batch_norm_forward(xh2, B, D, o_.bn_eps, o_.bn_momentum, h.rm2.data(), h.rv2.data(), ws.s1.data(), ws.s2.data(),
                         ws.mean.data(), ws.invstd2.data());
  float* u = ws.u.data();
  {
    const float* g2 = P + off.g2;
    const float* be2 = P + off.be2;
    for (int64_t i = 0; i < B; ++i) {
      const float* xr = xh2 + i * D;
      float* ur = u + i * D;
      for (int64_t j = 0; j < D; ++j) ur[j] = g2[j] * xr[j] + be2[j];
      ws.norm[i] = bk::normalize_row(ur, D);
    }
  }
  // logits = u y^T / t; symmetric cross-entropy with the diagonal as targets (weight 1: GL = d loss / d logits)
  float* GL = ws.gl.data();
  const double loss =
      bk::info_nce(u, y, B, D, inv_t, 1.0, ws.logits.data(), GL, ws.cmax.data(), ws.cscale.data(), ws.csum.data());

  // ---- backward ------------------------------------------------------------------------------
  // du = GL y / t (the targets y are fixed: no gradient for them); do = (du - u (u . du)) / |o|
  float* du = ws.du.data();
  bk::info_nce_input_gradients(GL, u, y, B, D, inv_t, du, nullptr);
  for (int64_t i = 0; i < B; ++i) bk::normalize_row_backward(du + i * D, u + i * D, ws.norm[i], D);
  // BN2 backward -> dz2 (in du); db2 = sum dz2; dW2 = dz2^T r; dr = dz2 W2
  bk::batch_norm_backward(du, xh2, B, D, P + off.g2, ws.invstd2.data(), ws.s1.data(), ws.s2.data(), G + off.g2, G + off.be2);
  {  // accumulated in float, as it always was here (bk::column_sums accumulates in double)
    float* __restrict db2 = G + off.b2;
    const float* __restrict dz2 = du;
    std::fill(db2, db2 + D, 0.f);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < D; ++j) db2[j] += dz2[i * D + j];
  }
  bk::gemm(true, false, D, H, B, 1.f, du, D, r, H, 0.f, G + off.w2, H);
  float* dr = ws.dr.data();
  bk::gemm(false, false, B, H, D, 1.f, du, D, P + off.w2, H, 0.f, dr, H);
  for (int64_t i = 0; i < B * H; ++i) dr[i] = r[i] > 0.f ? dr[i] : 0.f;  // ReLU mask, branch-free (vectorises)
  // BN1 backward -> dz1 (in dr); db1 = sum dz1; dW1 = dz1^T x
  bk::batch_norm_backward(dr, xh1, B, H, P + off.g1, ws.invstd1.data(), ws.s1.data(), ws.s2.data(), G + off.g1, G + off.be1);
  bk::column_sums(dr, B, H, ws.s1.data(), G + off.b1);
  bk::gemm(true, false, H, d, B, 1.f, dr, H, x, d, 0.f, G + off.w1, d);
  ++h.tracked;

  // ---- AdamW (torch::optim::AdamW, per element; one step count for the whole head) --------------
  ++h.steps;
  bk::adamw_update(P, G, h.m.data(), h.v.data(), off.total,
                   bk::AdamWStep(o_.lr, o_.weight_decay, o_.beta1, o_.beta2, o_.adam_eps, h.steps));
  return loss;
}

std::vector<double> HeadBank::step(const at::Tensor& x_in, const at::Tensor& y_in) {
  require(x_in.dim() == 3 && x_in.size(0) == heads_ && x_in.size(2) == d_ && y_in.dim() == 3 && y_in.size(0) == heads_ &&
              y_in.size(1) == x_in.size(1) && y_in.size(2) == D_,
          "HeadBank::step: x must be [K, B, d] and y [K, B, D]");
  const at::Tensor x = x_in.to(at::kFloat).contiguous(), y = y_in.to(at::kFloat).contiguous();
  const int64_t B = x.size(1);
  require(B >= 2, "HeadBank::step: a batch needs at least 2 rows");
  if (workspaces_.empty()) workspaces_.resize(1);
  std::vector<double> losses(static_cast<size_t>(heads_));
  for (int64_t k = 0; k < heads_; ++k)
    losses[static_cast<size_t>(k)] = step_head(bank_[static_cast<size_t>(k)], workspace(0, B), x[k].data_ptr<float>(),
                                               y[k].data_ptr<float>(), B);
  return losses;
}

std::vector<double> HeadBank::train_epoch(const at::Tensor& x_in, const at::Tensor& y_in, const std::vector<at::Tensor>& orders_in,
                                          int64_t batch) {
  require(static_cast<int64_t>(orders_in.size()) == heads_, "HeadBank::train_epoch: one order per head");
  require(x_in.dim() == 2 && x_in.size(1) == d_ && y_in.dim() == 2 && y_in.size(1) == D_ && y_in.size(0) == x_in.size(0),
          "HeadBank::train_epoch: x must be [N, d] and y [N, D]");
  require(batch >= 2, "HeadBank::train_epoch: batch must be at least 2");
  const at::Tensor x = x_in.scalar_type() == at::kFloat && x_in.is_contiguous() ? x_in : x_in.to(at::kFloat).contiguous();
  const at::Tensor y = y_in.scalar_type() == at::kFloat && y_in.is_contiguous() ? y_in : y_in.to(at::kFloat).contiguous();
  std::vector<at::Tensor> orders;
  for (const at::Tensor& o : orders_in) orders.push_back(o.to(at::kLong).contiguous());
  const int64_t rows_total = x.size(0);
  for (const at::Tensor& o : orders)
    if (o.numel() > 0) {
      require(o.min().item<int64_t>() >= 0 && o.max().item<int64_t>() < rows_total, "HeadBank::train_epoch: row id out of range");
    }
  const float* X = x.data_ptr<float>();
  const float* Y = y.data_ptr<float>();
  const int threads = at::get_num_threads();
  const bool parallel = threads > 1 && heads_ > 1;
  if (static_cast<int>(workspaces_.size()) < threads) workspaces_.resize(static_cast<size_t>(threads));
  std::vector<double> losses(static_cast<size_t>(heads_), 0.0);

  auto run_head = [&](int64_t k, int thread) {
    const at::Tensor& order = orders[static_cast<size_t>(k)];
    const int64_t N = order.numel();
    const int64_t* ids = order.data_ptr<int64_t>();
    Workspace& ws = workspace(thread, std::min(batch, std::max<int64_t>(N, 2)));
    double sum = 0;
    int64_t batches = 0;
    for (int64_t b = 0; b + 1 < N; b += batch) {
      const int64_t rows = std::min(batch, N - b);
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(ws.x.data() + i * d_, X + ids[b + i] * d_, sizeof(float) * d_);
        std::memcpy(ws.y.data() + i * D_, Y + ids[b + i] * D_, sizeof(float) * D_);
      }
      sum += step_head(bank_[static_cast<size_t>(k)], ws, ws.x.data(), ws.y.data(), rows);
      ++batches;
    }
    losses[static_cast<size_t>(k)] = sum / static_cast<double>(std::max<int64_t>(1, batches));
  };

  bk::SingleThreadedBlas blas(parallel);
  if (parallel) {
    at::parallel_for(0, heads_, 1, [&](int64_t begin, int64_t end) {
      const int thread = at::get_thread_num();
      for (int64_t k = begin; k < end; ++k) run_head(k, thread);
    });
  } else {
    for (int64_t k = 0; k < heads_; ++k) run_head(k, 0);
  }
  return losses;
}

}  // namespace omnibind::training
