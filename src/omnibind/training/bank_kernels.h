// Kernels shared by the hand-written training banks (head_bank.cpp: a space's projector heads;
// router_bank.cpp: the routers): one copy, so both banks compute the same numbers the same way.
// Internal to the training layer (not part of its API). Every array is row-major float32 unless said;
// the callers own all memory (workspaces sized once), so nothing here allocates on the hot path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace omnibind::training::bank_kernels {

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C; op(A) [m, k], op(B) [k, n]; lda/ldb/ldc row strides.
// cblas_sgemm of the BLAS libtorch loads (OpenBLAS on Debian) when present, else at::addmm_ on views.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc);

// Holds OpenBLAS at one thread while a bank's tasks run in parallel (each GEMM on its own thread), so its pool
// neither oversubscribes the cores nor spins between the small calls; restores the count afterwards.
// `active` false: does nothing (a bank running serially keeps BLAS's own threads).
class SingleThreadedBlas {
 public:
  explicit SingleThreadedBlas(bool active = true);
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_ = 0;
};

// Training-mode BatchNorm1d over the rows of z [B, C], in place (z becomes x_hat): batch mean and biased
// variance accumulated in double, running stats updated with the unbiased variance (torch's momentum form).
// Scratch acc, acc2 [C] (double); out: mean [C], invstd [C] (kept for the backward pass).
void batch_norm_forward(float* z, int64_t B, int64_t C, double eps, double momentum, float* running_mean, float* running_var,
                        double* acc, double* acc2, float* mean, float* invstd);

// Backward of y = gamma * x_hat + beta (training-mode BN): dy [B, C] in place -> dz; xh [B, C] the forward's
// x_hat, gamma/invstd [C]; dgamma, dbeta [C] written (overwritten, not summed). Scratch acc, acc2 [C] (double).
void batch_norm_backward(float* dy, const float* xh, int64_t B, int64_t C, const float* gamma, const float* invstd, double* acc,
                         double* acc2, float* dgamma, float* dbeta);

// Column sums of a [B, C] into out [C], accumulated in double (scratch acc [C]): a Linear's bias gradient.
void column_sums(const float* a, int64_t B, int64_t C, double* acc, float* out);

// Symmetric InfoNCE of row-aligned unit rows a, b [B, D]: logits L = a b^T / t (inv_t = 1/t), diagonal targets,
// mean of the row- and column-wise cross-entropies. Returns the loss (unweighted); GL [B, B] = d(loss * weight)
// / d(logits). L [B, B] is overwritten (it ends as exp(L - column max)); scratch cmax, cscale [B], csum [B] (double).
double info_nce(const float* a, const float* b, int64_t B, int64_t D, float inv_t, double weight, float* L, float* GL, float* cmax,
                float* cscale, double* csum);

// The gradients reaching the InfoNCE inputs from GL [B, B] (info_nce's): da = GL b / t, db = GL^T a / t, each
// [B, D] and overwritten; a null da or db is not computed (e.g. a fixed target side).
void info_nce_input_gradients(const float* GL, const float* a, const float* b, int64_t B, int64_t D, float inv_t, float* da,
                              float* db);

// u [D] in place -> u / max(|u|, 1e-12) (F.normalize); returns the clamped norm (kept for the backward pass).
inline float normalize_row(float* __restrict u, int64_t D) {
  double sq = 0;
  for (int64_t j = 0; j < D; ++j) sq += static_cast<double>(u[j]) * u[j];
  const float n = std::max(static_cast<float>(std::sqrt(sq)), 1e-12f);
  for (int64_t j = 0; j < D; ++j) u[j] /= n;
  return n;
}

// Backward of normalize_row: g [D] (d/du of the unit row) in place -> d/dv = (g - u (u . g)) / n, with u [D] the
// unit row and n its clamped norm; below the clamp the norm is a constant, so g / n. __restrict: the row loops
// vectorise (same operations, same order).
inline void normalize_row_backward(float* __restrict g, const float* __restrict u, float n, int64_t D) {
  double dot = 0;
  for (int64_t j = 0; j < D; ++j) dot += static_cast<double>(g[j]) * u[j];
  const float fd = static_cast<float>(dot);
  if (n > 1e-12f)
    for (int64_t j = 0; j < D; ++j) g[j] = (g[j] - u[j] * fd) / n;
  else
    for (int64_t j = 0; j < D; ++j) g[j] /= n;
}

// torch::optim::AdamW's per-element update for one parameter tensor at its step count (1 on the first update):
// the float factors, computed once per tensor and step.
struct AdamWStep {
  float decay, b1, b2, one_b1, one_b2, sqrt_bc2, eps, step_size;
  AdamWStep(double lr, double weight_decay, double beta1, double beta2, double adam_eps, int64_t step)
      : decay(static_cast<float>(1 - lr * weight_decay)),
        b1(static_cast<float>(beta1)),
        b2(static_cast<float>(beta2)),
        one_b1(static_cast<float>(1 - beta1)),
        one_b2(static_cast<float>(1 - beta2)),
        sqrt_bc2(static_cast<float>(std::sqrt(1 - std::pow(beta2, static_cast<double>(step))))),
        eps(static_cast<float>(adam_eps)),
        step_size(static_cast<float>(lr / (1 - std::pow(beta1, static_cast<double>(step))))) {}
};

// The AdamW element loop over n values: parameters P, gradients G, moments M, V (all [n]); P, M, V updated.
inline void adamw_update(float* P, const float* G, float* M, float* V, int64_t n, const AdamWStep& s) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = G[i];
    const float p = P[i] * s.decay;
    const float m = M[i] * s.b1 + s.one_b1 * g;
    const float v = V[i] * s.b2 + s.one_b2 * g * g;
    M[i] = m;
    V[i] = v;
    P[i] = p - s.step_size * m / (std::sqrt(v) / s.sqrt_bc2 + s.eps);
  }
}

}  // namespace omnibind::training::bank_kernels
