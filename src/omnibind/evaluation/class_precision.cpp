#include "omnibind/evaluation/class_precision.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace omnibind::evaluation {
namespace {

// Hits and counted queries of q -> g.
std::pair<int64_t, int64_t> one_way(const at::Tensor& q, const at::Tensor& ql, const at::Tensor& g, const at::Tensor& gl, int64_t block) {
  int64_t hits = 0, n = 0;
  const at::Tensor gf = g.to(at::kFloat), glong = gl.to(at::kLong);
  for (int64_t b = 0; b < q.size(0); b += block) {
    const int64_t e = std::min(q.size(0), b + block);
    at::Tensor labels = ql.slice(0, b, e).to(at::kLong);
    at::Tensor top = at::mm(q.slice(0, b, e).to(at::kFloat), gf.t()).argmax(1);
    at::Tensor valid = labels.ge(0);
    hits += glong.index_select(0, top).eq(labels).logical_and(valid).sum().item<int64_t>();
    n += valid.sum().item<int64_t>();
  }
  return {hits, n};
}

}  // namespace

double class_precision_at_1(const at::Tensor& a, const at::Tensor& a_label, const at::Tensor& b, const at::Tensor& b_label,
                            int64_t block) {
  block = std::max<int64_t>(block, 1);
  auto [h1, n1] = one_way(a, a_label, b, b_label, block);
  auto [h2, n2] = one_way(b, b_label, a, a_label, block);
  const double p1 = n1 > 0 ? static_cast<double>(h1) / static_cast<double>(n1) : 0.0;
  const double p2 = n2 > 0 ? static_cast<double>(h2) / static_cast<double>(n2) : 0.0;
  return 0.5 * (p1 + p2);
}

}  // namespace omnibind::evaluation
