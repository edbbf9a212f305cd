#include "omnibind/binding/router.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"

namespace omnibind::binding {

Router Router::load(const tensor_io::StateDict& sd, const std::string& prefix) {
  Router r;
  r.l0 = load_linear_bn(sd, prefix + "0", prefix + "1");
  r.l1 = load_linear_bn(sd, prefix + "3", prefix + "4");
  r.l2 = load_linear(sd, prefix + "6");
  require(r.l1.in_features() == r.l0.out_features(),
          sd.source() + ": '" + prefix + "3.weight' takes " + std::to_string(r.l1.in_features()) + " inputs but '" +
              prefix + "0.weight' gives " + std::to_string(r.l0.out_features()));
  require(r.l2.in_features() == r.l1.out_features(),
          sd.source() + ": '" + prefix + "6.weight' takes " + std::to_string(r.l2.in_features()) + " inputs but '" +
              prefix + "3.weight' gives " + std::to_string(r.l1.out_features()));
  return r;
}

at::Tensor Router::scores(const at::Tensor& x) const {
  at::Tensor h = at::relu(at::linear(x, l0.weight, l0.bias));
  h = at::tanh(at::linear(h, l1.weight, l1.bias));
  return at::sigmoid(at::linear(h, l2.weight, l2.bias));
}

}  // namespace omnibind::binding
