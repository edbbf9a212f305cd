// Linear followed by eval-mode BatchNorm1d, folded into one affine map at load time:
//   BN(Wx + b) = s * (Wx + b - mean) + beta, s = gamma / sqrt(var + eps)
//   => W' = s[:, None] * W, b' = s * (b - mean) + beta     (computed in float64, stored float32)
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::binding {

struct FoldedLinear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out]
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
};

constexpr double kBatchNormEps = 1e-5;  // torch.nn.BatchNorm1d default, used by the reference

// Reads "<linear>.weight/.bias" and "<bn>.weight/.bias/.running_mean/.running_var" from sd,
// checking shapes (InputError naming the key and both shapes).
FoldedLinear load_linear_bn(const tensor_io::StateDict& sd, const std::string& linear, const std::string& bn);
// The same, writing the folded weight/bias into preallocated [out, in] / [out] float32 views
// (one pass over the mapped weights, no intermediate copy). Shapes must match the views.
void load_linear_bn_into(const tensor_io::StateDict& sd, const std::string& linear, const std::string& bn,
                         at::Tensor weight_out, at::Tensor bias_out);
// A plain Linear "<linear>.weight/.bias".
FoldedLinear load_linear(const tensor_io::StateDict& sd, const std::string& linear);

// A float tensor from the state dict (any float dtype), as float64, with an expected rank.
at::Tensor load_float(const tensor_io::StateDict& sd, const std::string& key, int64_t rank);

}  // namespace omnibind::binding
