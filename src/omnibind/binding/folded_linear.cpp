#include "omnibind/binding/folded_linear.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::binding {

namespace {
// The tensor as stored (any float dtype), rank-checked; no copy when it is already float32.
at::Tensor load_stored(const tensor_io::StateDict& sd, const std::string& key, int64_t rank) {
  const auto& raw = sd.at(key);
  at::Tensor t = tensor_io::to_tensor(raw);
  require(at::isFloatingType(t.scalar_type()),
          sd.source() + ": tensor '" + key + "' has dtype " + std::string(tensor_io::dtype_name(raw.dtype)) +
              ", expected a floating-point type");
  require(t.dim() == rank, sd.source() + ": tensor '" + key + "' has shape " + raw.shape_string() + ", expected " +
                               std::to_string(rank) + " dimensions");
  return t;
}
}  // namespace

at::Tensor load_float(const tensor_io::StateDict& sd, const std::string& key, int64_t rank) {
  return load_stored(sd, key, rank).to(at::kDouble);
}

namespace {
void require_len(const tensor_io::StateDict& sd, const std::string& key, const at::Tensor& t, int64_t n) {
  require(t.size(0) == n, sd.source() + ": tensor '" + key + "' has shape " + sd.at(key).shape_string() +
                              ", expected [" + std::to_string(n) + "]");
}
}  // namespace

FoldedLinear load_linear(const tensor_io::StateDict& sd, const std::string& linear) {
  at::Tensor w = load_stored(sd, linear + ".weight", 2);
  at::Tensor b = load_float(sd, linear + ".bias", 1);
  require_len(sd, linear + ".bias", b, w.size(0));
  return {w.to(at::kFloat).contiguous(), b.to(at::kFloat).contiguous()};
}

void load_linear_bn_into(const tensor_io::StateDict& sd, const std::string& linear, const std::string& bn,
                         at::Tensor weight_out, at::Tensor bias_out) {
  // The weight matrix is the bulk of a checkpoint (1.9 GB for Large): one float32 pass over the
  // mapped file straight into the destination. The per-row scale and the bias are float64.
  at::Tensor w = load_stored(sd, linear + ".weight", 2);
  at::Tensor b = load_float(sd, linear + ".bias", 1);
  const int64_t out = w.size(0);
  require(w.size(0) == weight_out.size(0) && w.size(1) == weight_out.size(1),
          sd.source() + ": tensor '" + linear + ".weight' has shape " + sd.at(linear + ".weight").shape_string() +
              ", expected [" + std::to_string(weight_out.size(0)) + ", " + std::to_string(weight_out.size(1)) + "]");
  require_len(sd, linear + ".bias", b, out);
  at::Tensor gamma = load_float(sd, bn + ".weight", 1);
  at::Tensor beta = load_float(sd, bn + ".bias", 1);
  at::Tensor mean = load_float(sd, bn + ".running_mean", 1);
  at::Tensor var = load_float(sd, bn + ".running_var", 1);
  require_len(sd, bn + ".weight", gamma, out);
  require_len(sd, bn + ".bias", beta, out);
  require_len(sd, bn + ".running_mean", mean, out);
  require_len(sd, bn + ".running_var", var, out);
  require(var.min().item<double>() >= 0, sd.source() + ": tensor '" + bn + ".running_var' has negative entries");
  at::Tensor s = gamma / at::sqrt(var + kBatchNormEps);
  at::mul_out(weight_out, w, s.to(at::kFloat).unsqueeze(1));
  bias_out.copy_((b - mean) * s + beta);
}

FoldedLinear load_linear_bn(const tensor_io::StateDict& sd, const std::string& linear, const std::string& bn) {
  const auto& shape = sd.at(linear + ".weight").shape;
  require(shape.size() == 2, sd.source() + ": tensor '" + linear + ".weight' has shape " +
                                 sd.at(linear + ".weight").shape_string() + ", expected 2 dimensions");
  FoldedLinear f{at::empty({shape[0], shape[1]}), at::empty({shape[0]})};
  load_linear_bn_into(sd, linear, bn, f.weight, f.bias);
  return f;
}

}  // namespace omnibind::binding
