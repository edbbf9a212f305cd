// A modality's router (the reference's MOE_Router_Sig):
//   sigmoid(Linear(Tanh(BN(Linear(ReLU(BN(Linear(x))))))))    x: [B, sum of predictor dims] -> [B, S]
// The caller applies the softmax over the S slots (after x temperature for text).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "omnibind/binding/folded_linear.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::binding {

struct Router {
  FoldedLinear l0;  // router.0 + router.1 (BN)   [H1, in]
  FoldedLinear l1;  // router.3 + router.4 (BN)   [H2, H1]
  FoldedLinear l2;  // router.6                    [S, H2]

  int64_t in_dim() const { return l0.in_features(); }
  int64_t outputs() const { return l2.out_features(); }

  // prefix: "A_enc_router.router." etc.
  static Router load(const tensor_io::StateDict& sd, const std::string& prefix);
  // [B, in] -> sigmoid scores [B, S]
  at::Tensor scores(const at::Tensor& x) const;
};

}  // namespace omnibind::binding
