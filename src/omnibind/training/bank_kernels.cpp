#include "omnibind/training/bank_kernels.h"

#include <ATen/ATen.h>

#include <limits>

// The BLAS libtorch loads (OpenBLAS on Debian), resolved at run time; absent: at::addmm_ does the GEMMs.
extern "C" void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha, const float* a, int lda,
                            const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace omnibind::training::bank_kernels {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  if (cblas_sgemm) {
    cblas_sgemm(101 /*RowMajor*/, ta ? 112 : 111, tb ? 112 : 111, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
                static_cast<int>(ldc));
    return;
  }
  auto view = [](const float* p, int64_t rows, int64_t cols, int64_t ld, bool t) {
    at::Tensor v = at::from_blob(const_cast<float*>(p), {rows, cols}, {ld, 1}, at::kFloat);
    return t ? v.t() : v;
  };
  at::Tensor A = ta ? view(a, k, m, lda, true) : view(a, m, k, lda, false);
  at::Tensor B = tb ? view(b, n, k, ldb, true) : view(b, k, n, ldb, false);
  at::Tensor C = at::from_blob(c, {m, n}, {ldc, 1}, at::kFloat);
  C.addmm_(A, B, beta, alpha);
}

SingleThreadedBlas::SingleThreadedBlas(bool active) {
  if (active && openblas_set_num_threads && openblas_get_num_threads) {
    saved_ = openblas_get_num_threads();
    if (saved_ != 1) openblas_set_num_threads(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (saved_ > 1) openblas_set_num_threads(saved_);
}

void batch_norm_forward(float* z, int64_t B, int64_t C, double eps, double momentum, float* running_mean, float* running_var,
                        double* acc, double* acc2, float* mean, float* invstd) {
  std::fill(acc, acc + C, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    const float* row = z + i * C;
    for (int64_t j = 0; j < C; ++j) acc[j] += row[j];
  }
  for (int64_t j = 0; j < C; ++j) mean[j] = static_cast<float>(acc[j] / static_cast<double>(B));
  std::fill(acc2, acc2 + C, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    const float* row = z + i * C;
    for (int64_t j = 0; j < C; ++j) {
      const double c = static_cast<double>(row[j]) - acc[j] / static_cast<double>(B);
      acc2[j] += c * c;
    }
  }
  for (int64_t j = 0; j < C; ++j) {
    const double var = acc2[j] / static_cast<double>(B);
    invstd[j] = static_cast<float>(1.0 / std::sqrt(var + eps));
    running_mean[j] = static_cast<float>((1 - momentum) * running_mean[j] + momentum * (acc[j] / static_cast<double>(B)));
    running_var[j] = static_cast<float>((1 - momentum) * running_var[j] + momentum * acc2[j] / static_cast<double>(B - 1));
  }
  for (int64_t i = 0; i < B; ++i) {
    float* row = z + i * C;
    for (int64_t j = 0; j < C; ++j) row[j] = (row[j] - mean[j]) * invstd[j];
  }
}

void batch_norm_backward(float* dy, const float* xh, int64_t B, int64_t C, const float* gamma, const float* invstd, double* acc,
                         double* acc2, float* dgamma, float* dbeta) {
  std::fill(acc, acc + C, 0.0);
  std::fill(acc2, acc2 + C, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    const float* g = dy + i * C;
    const float* x = xh + i * C;
    for (int64_t j = 0; j < C; ++j) {
      acc[j] += g[j];
      acc2[j] += static_cast<double>(g[j]) * x[j];
    }
  }
  const double inv_b = 1.0 / static_cast<double>(B);
  for (int64_t j = 0; j < C; ++j) {
    dbeta[j] = static_cast<float>(acc[j]);
    dgamma[j] = static_cast<float>(acc2[j]);
  }
  // dz = gamma * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))
  for (int64_t i = 0; i < B; ++i) {
    float* g = dy + i * C;
    const float* x = xh + i * C;
    for (int64_t j = 0; j < C; ++j) {
      const float scale = gamma[j] * invstd[j];
      g[j] = scale * (g[j] - static_cast<float>(acc[j] * inv_b) - x[j] * static_cast<float>(acc2[j] * inv_b));
    }
  }
}

void column_sums(const float* __restrict a, int64_t B, int64_t C, double* __restrict acc, float* __restrict out) {
  std::fill(acc, acc + C, 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < C; ++j) acc[j] += a[i * C + j];
  for (int64_t j = 0; j < C; ++j) out[j] = static_cast<float>(acc[j]);
}

double info_nce(const float* a, const float* b, int64_t B, int64_t D, float inv_t, double weight, float* L, float* GL, float* cmax,
                float* cscale, double* csum) {
  gemm(false, true, B, B, D, inv_t, a, D, b, D, 0.f, L, B);
  double loss_rows = 0, loss_cols = 0;
  const float half_over_b = static_cast<float>(0.5 * weight / static_cast<double>(B));
  for (int64_t i = 0; i < B; ++i) {  // row softmax -> GL = p_row * weight / (2B)
    const float* lr = L + i * B;
    float* gr = GL + i * B;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < B; ++j) mx = std::max(mx, lr[j]);
    double s = 0;
    for (int64_t j = 0; j < B; ++j) {
      gr[j] = std::exp(lr[j] - mx);
      s += gr[j];
    }
    loss_rows += static_cast<double>(mx) + std::log(s) - lr[i];
    const float scale = static_cast<float>(1.0 / s) * half_over_b;
    for (int64_t j = 0; j < B; ++j) gr[j] *= scale;
  }
  // column softmax, added: column max and sum accumulated row by row
  std::fill(cmax, cmax + B, -std::numeric_limits<float>::infinity());
  std::fill(csum, csum + B, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    const float* lr = L + i * B;
    for (int64_t j = 0; j < B; ++j) cmax[j] = std::max(cmax[j], lr[j]);
  }
  for (int64_t j = 0; j < B; ++j) loss_cols += static_cast<double>(cmax[j]) - L[j * B + j];
  for (int64_t i = 0; i < B; ++i) {  // L becomes exp(L - column max), computed once for the sum and the gradient
    float* lr = L + i * B;
    for (int64_t j = 0; j < B; ++j) {
      lr[j] = std::exp(lr[j] - cmax[j]);
      csum[j] += lr[j];
    }
  }
  for (int64_t j = 0; j < B; ++j) {
    loss_cols += std::log(csum[j]);
    cscale[j] = static_cast<float>(1.0 / csum[j]) * half_over_b;
  }
  for (int64_t i = 0; i < B; ++i) {
    const float* lr = L + i * B;
    float* gr = GL + i * B;
    for (int64_t j = 0; j < B; ++j) gr[j] += lr[j] * cscale[j];
    gr[i] -= 2 * half_over_b;
  }
  return 0.5 * (loss_rows + loss_cols) / static_cast<double>(B);
}

void info_nce_input_gradients(const float* GL, const float* a, const float* b, int64_t B, int64_t D, float inv_t, float* da,
                              float* db) {
  if (da) gemm(false, false, B, D, B, inv_t, GL, B, b, D, 0.f, da, D);
  if (db) gemm(true, false, B, D, B, inv_t, GL, B, a, D, 0.f, db, D);
}

}  // namespace omnibind::training::bank_kernels
