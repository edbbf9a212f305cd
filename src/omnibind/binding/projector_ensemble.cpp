#include "omnibind/binding/projector_ensemble.h"

#include <ATen/ATen.h>

#include "omnibind/binding/folded_linear.h"
#include "omnibind/common/error.h"

namespace omnibind::binding {

ProjectorEnsemble ProjectorEnsemble::load(const tensor_io::StateDict& sd, const std::string& prefix, int64_t first,
                                          int64_t heads) {
  ProjectorEnsemble p;
  p.heads = heads;
  std::vector<at::Tensor> w1s, b1s, w2s, b2s;
  for (int64_t k = 0; k < heads; ++k) {
    const std::string head = prefix + std::to_string(first + k) + ".Head2.mlps.";
    FoldedLinear l1 = load_linear_bn(sd, head + "0", head + "1");
    FoldedLinear l2 = load_linear_bn(sd, head + "3", head + "4");
    if (k == 0) {
      p.in_dim = l1.in_features();
      p.hidden = l1.out_features();
      p.out_dim = l2.out_features();
    }
    require(l1.in_features() == p.in_dim && l1.out_features() == p.hidden,
            sd.source() + ": '" + head + "0.weight' is [" + std::to_string(l1.out_features()) + ", " +
                std::to_string(l1.in_features()) + "] but the space's first head has [" + std::to_string(p.hidden) +
                ", " + std::to_string(p.in_dim) + "]");
    require(l2.in_features() == p.hidden && l2.out_features() == p.out_dim,
            sd.source() + ": '" + head + "3.weight' is [" + std::to_string(l2.out_features()) + ", " +
                std::to_string(l2.in_features()) + "], expected [" + std::to_string(p.out_dim) + ", " +
                std::to_string(p.hidden) + "]");
    w1s.push_back(l1.weight);
    b1s.push_back(l1.bias);
    w2s.push_back(l2.weight);
    b2s.push_back(l2.bias.unsqueeze(0));
  }
  p.w1 = at::cat(w1s, 0).contiguous();
  p.b1 = at::cat(b1s, 0).contiguous();
  p.w2 = at::stack(w2s, 0).contiguous();
  p.b2 = at::stack(b2s, 0).contiguous();
  return p;
}

at::Tensor ProjectorEnsemble::forward_heads(const at::Tensor& x) const {
  const int64_t B = x.size(0);
  at::Tensor xin = x.to(w1.scalar_type());
  at::Tensor h = at::relu(at::linear(xin, w1, b1));                 // [B, K*H]
  h = h.view({B, heads, hidden}).transpose(0, 1);                   // [K, B, H]
  at::Tensor y = at::baddbmm(b2, h, w2.transpose(1, 2)).to(at::kFloat);  // [K, B, D]
  // F.normalize: x / max(||x||, 1e-12)
  y = y / y.norm(2, -1, true).clamp_min(1e-12);
  return y.transpose(0, 1);                                         // [B, K, D]
}

at::Tensor ProjectorEnsemble::forward(const at::Tensor& x) const { return forward_heads(x).mean(1); }

ProjectorEnsemble ProjectorEnsemble::with_weight_dtype(at::ScalarType dtype) const {
  ProjectorEnsemble p = *this;
  p.w1 = w1.to(dtype).contiguous();
  p.b1 = b1.to(dtype).contiguous();
  p.w2 = w2.to(dtype).contiguous();
  p.b2 = b2.to(dtype).contiguous();
  return p;
}

}  // namespace omnibind::binding
