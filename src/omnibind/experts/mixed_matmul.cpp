#include "omnibind/experts/mixed_matmul.h"

#include <ATen/ATen.h>

#include "omnibind/common/cpu_features.h"

namespace omnibind::experts::mixed {
namespace {
at::Tensor as(const at::Tensor& t, at::ScalarType dt) {
  return !t.defined() || t.scalar_type() == dt ? t : t.to(dt);
}
bool is_16bit(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }
}  // namespace

bool native_bf16(at::ScalarType compute) { return compute == at::kBFloat16 && cpu_has_native_bf16(); }

at::Tensor stored_weight(const at::Tensor& t, at::ScalarType compute) {
  at::Tensor out = t;
  if (compute == at::kBFloat16) out = as(t, at::kBFloat16);
  else if (!(t.scalar_type() == at::kFloat || is_16bit(t.scalar_type()))) out = as(t, at::kFloat);
  return out.is_contiguous() ? out : out.contiguous();
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::ScalarType compute) {
  if (weight.scalar_type() == at::kBFloat16 && native_bf16(compute))
    return as(at::linear(as(x, at::kBFloat16), weight, as(bias, at::kBFloat16)), at::kFloat);
  // Upcast: the same float32 GEMM (same shapes and strides) as a model converted up front.
  return at::linear(as(x, at::kFloat), as(weight, at::kFloat), as(bias, at::kFloat));
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, at::ScalarType compute) {
  if (native_bf16(compute)) return as(at::matmul(as(a, at::kBFloat16), as(b, at::kBFloat16)), at::kFloat);
  return at::matmul(as(a, at::kFloat), as(b, at::kFloat));
}

}  // namespace omnibind::experts::mixed
