#include "omnibind/experts/htsat/projection_mlp.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::htsat {

ProjectionMlp ProjectionMlp::load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t hidden,
                                  int64_t out, at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) throw InputError("projection precision must be fp32 or bf16");
  using Kind = WeightSource::Kind;
  ProjectionMlp p;
  p.weight_0 = w.get_matmul(prefix + "0.weight", {hidden, in}, dtype);
  p.bias_0 = w.get(prefix + "0.bias", {hidden}, Kind::Bias).to(dtype);
  p.weight_2 = w.get_matmul(prefix + "2.weight", {out, hidden}, dtype);
  p.bias_2 = w.get(prefix + "2.bias", {out}, Kind::Bias).to(dtype);
  p.compute = dtype;
  return p;
}

at::Tensor ProjectionMlp::forward(const at::Tensor& x) const {
  at::Tensor h = at::relu(mixed::linear(x, weight_0, bias_0, compute));
  return mixed::linear(h, weight_2, bias_2, compute);
}

at::Tensor l2_normalize(const at::Tensor& x) {
  at::Tensor f = x.to(at::kFloat);
  // F.normalize: x / (||x||_2).clamp_min(eps).expand_as(x)
  return f / at::norm(f, 2, {-1}, /*keepdim=*/true).clamp_min(1e-12);
}

}  // namespace omnibind::experts::htsat
