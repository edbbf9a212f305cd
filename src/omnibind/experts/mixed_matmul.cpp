#include "omnibind/experts/mixed_matmul.h"

#include <ATen/ATen.h>

#include "omnibind/common/cpu_features.h"

namespace omnibind::experts::mixed {
namespace {
at::Tensor as(const at::Tensor& t, at::ScalarType dt) {
  return !t.defined() || t.scalar_type() == dt ? t : t.to(dt);
}
bool is_16bit(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

// A 16-bit weight upcast to float32 for one call, written into this thread's reusable buffer: a
// fresh 100 MB allocation per matmul costs ~3x the conversion in page faults (EVA02-E's fc1: 0.18 s
// vs 0.05 s here). The buffer grows to the largest weight seen (EVA02-E: 110 MB per thread). The
// layout is the one .to(kFloat) gives (contiguous, or a transposed view of a contiguous matrix), so
// the GEMM sees exactly the operand a converted model would hold.
at::Tensor upcast_weight(const at::Tensor& w) {
  thread_local at::Tensor scratch;
  const bool transposed = w.dim() == 2 && !w.is_contiguous() && w.t().is_contiguous();
  if (!w.is_contiguous() && !transposed) return w.to(at::kFloat);
  if (!scratch.defined() || scratch.numel() < w.numel()) {
    scratch = at::Tensor();  // release the smaller buffer first
    scratch = at::empty({w.numel()}, at::TensorOptions().dtype(at::kFloat));
  }
  // A fresh tensor over the buffer's memory each call, so it belongs to the caller's mode (an
  // inference tensor inside c10::InferenceMode, a normal one outside): copying into a view of a
  // buffer made in the other mode is refused by libtorch.
  const at::Tensor src = transposed ? w.t() : w;
  at::Tensor dst = at::from_blob(scratch.data_ptr<float>(), src.sizes(), at::TensorOptions().dtype(at::kFloat));
  dst.copy_(src);
  return transposed ? dst.t() : dst;
}
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
  const at::Tensor w = is_16bit(weight.scalar_type()) ? upcast_weight(weight) : as(weight, at::kFloat);
  return at::linear(as(x, at::kFloat), w, as(bias, at::kFloat));
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, at::ScalarType compute) {
  if (native_bf16(compute)) return as(at::matmul(as(a, at::kBFloat16), as(b, at::kBFloat16)), at::kFloat);
  return at::matmul(as(a, at::kFloat), as(b, at::kFloat));
}

}  // namespace omnibind::experts::mixed
