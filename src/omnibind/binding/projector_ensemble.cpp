#include "omnibind/binding/projector_ensemble.h"

#include <ATen/ATen.h>

#include "omnibind/binding/folded_linear.h"
#include "omnibind/common/error.h"

namespace omnibind::binding {

ProjectorEnsemble ProjectorEnsemble::load(const tensor_io::StateDict& sd, const std::string& prefix, int64_t first,
                                          int64_t heads) {
  ProjectorEnsemble p;
  p.heads = heads;
  // Widths from the first head; every head is folded straight into the stacked buffers.
  const std::string head0 = prefix + std::to_string(first) + ".Head2.mlps.";
  const auto& s0 = sd.at(head0 + "0.weight").shape;
  const auto& s3 = sd.at(head0 + "3.weight").shape;
  require(s0.size() == 2 && s3.size() == 2 && s3[1] == s0[0],
          sd.source() + ": '" + head0 + "0.weight' " + sd.at(head0 + "0.weight").shape_string() + " and '" + head0 +
              "3.weight' " + sd.at(head0 + "3.weight").shape_string() + " do not chain");
  p.hidden = s0[0];
  p.in_dim = s0[1];
  p.out_dim = s3[0];
  p.w1 = at::empty({heads * p.hidden, p.in_dim});
  p.b1 = at::empty({heads * p.hidden});
  p.w2 = at::empty({heads, p.out_dim, p.hidden});
  p.b2 = at::empty({heads, 1, p.out_dim});
  for (int64_t k = 0; k < heads; ++k) {
    const std::string head = prefix + std::to_string(first + k) + ".Head2.mlps.";
    load_linear_bn_into(sd, head + "0", head + "1", p.w1.narrow(0, k * p.hidden, p.hidden),
                        p.b1.narrow(0, k * p.hidden, p.hidden));
    load_linear_bn_into(sd, head + "3", head + "4", p.w2[k], p.b2[k][0]);
  }
  return p;
}

at::Tensor ProjectorEnsemble::forward_heads(const at::Tensor& x) const {
  const int64_t B = x.size(0);
  at::Tensor xin = x.to(w1.scalar_type());
  at::Tensor h = at::relu(at::linear(xin, w1, b1));  // [B, K*H], all K first layers in one GEMM
  // Second layers: one BLAS GEMM per head on a column block of h (strided, no copy). A loop of
  // addmm, not baddbmm: libtorch's CPU bmm does not reach the BLAS/oneDNN GEMM for these shapes.
  at::Tensor y = at::empty({B, heads, out_dim}, at::TensorOptions().dtype(w1.scalar_type()));
  for (int64_t k = 0; k < heads; ++k) {
    at::Tensor yk = y.select(1, k);
    at::addmm_out(yk, b2[k][0], h.narrow(1, k * hidden, hidden), w2[k].t());
  }
  y = y.to(at::kFloat);
  // F.normalize: x / max(||x||, 1e-12)
  return y / y.norm(2, -1, true).clamp_min(1e-12);  // [B, K, D]
}

at::Tensor ProjectorEnsemble::forward(const at::Tensor& x) const {
  if (w1.scalar_type() != at::kFloat) return forward_heads(x).mean(1);
  // fp32: one head at a time, normalised and summed in place. Same GEMM work as forward_heads, but
  // the temporaries are one head's [B, H] and [B, D] (2 MB + 1.5 MB at B = 256), which the
  // allocator reuses, instead of [B, K*H] + [B, K, D] (26 MB) mapped fresh on every call: on this
  // VM page faults are expensive and that made the router stage 10-25% slower than the reference.
  const at::Tensor xin = x.to(at::kFloat);
  at::Tensor sum;
  for (int64_t k = 0; k < heads; ++k) {
    const at::Tensor h = at::addmm(b1.narrow(0, k * hidden, hidden), xin, w1.narrow(0, k * hidden, hidden).t()).relu_();
    at::Tensor y = at::addmm(b2[k][0], h, w2[k].t());
    y.div_(y.norm(2, -1, true).clamp_min_(1e-12));  // F.normalize
    if (k == 0) sum = y;
    else sum.add_(y);
  }
  return sum.div_(static_cast<double>(heads));
}

ProjectorEnsemble ProjectorEnsemble::with_weight_dtype(at::ScalarType dtype) const {
  ProjectorEnsemble p = *this;
  p.w1 = w1.to(dtype).contiguous();
  p.b1 = b1.to(dtype).contiguous();
  p.w2 = w2.to(dtype).contiguous();
  p.b2 = b2.to(dtype).contiguous();
  return p;
}

}  // namespace omnibind::binding
