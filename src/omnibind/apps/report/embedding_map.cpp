#include "omnibind/apps/report/embedding_map.h"

#include <ATen/ATen.h>

#include <string>

#include "omnibind/common/error.h"

namespace omnibind::apps {

std::vector<ScatterPoint> pca_map(const at::Tensor& embeddings, const std::vector<int>& labels) {
  if (embeddings.dim() != 2 || embeddings.size(0) < 1 || embeddings.size(1) < 1)
    throw InputError("pca_map: embeddings must be a non-empty [N, D] matrix");
  if (static_cast<int64_t>(labels.size()) != embeddings.size(0))
    throw InputError("pca_map: " + std::to_string(labels.size()) + " labels for " +
                     std::to_string(embeddings.size(0)) + " embeddings");
  at::Tensor x = embeddings.to(at::kDouble).contiguous();
  if (!at::isfinite(x).all().item<bool>()) throw InputError("pca_map: embeddings contain NaN or Inf");
  x = x - x.mean(0, /*keepdim=*/true);
  const at::Tensor cov = at::matmul(x.t(), x);         // [D, D], symmetric
  const auto [values, vectors] = at::linalg_eigh(cov);  // ascending eigenvalues
  const int64_t d = vectors.size(1);
  at::Tensor basis = at::zeros({d, 2}, x.options());
  for (int64_t k = 0; k < std::min<int64_t>(2, d); ++k) {
    at::Tensor v = vectors.select(1, d - 1 - k);
    if (values[d - 1 - k].item<double>() <= 1e-12 * std::max(1.0, values[d - 1].item<double>())) break;
    const int64_t top = v.abs().argmax().item<int64_t>();
    if (v[top].item<double>() < 0) v = -v;
    basis.select(1, k).copy_(v);
  }
  const at::Tensor xy = at::matmul(x, basis).contiguous();
  const double* p = xy.data_ptr<double>();
  std::vector<ScatterPoint> points(labels.size());
  for (size_t i = 0; i < points.size(); ++i) points[i] = {p[2 * i], p[2 * i + 1], labels[i]};
  return points;
}

}  // namespace omnibind::apps
