// Where a model's tensors come from: a checkpoint's state dict (checked by name and shape, cast
// to the compute dtype), or random values of the right shapes (benchmarks, no file needed).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts::imagebind {

class WeightSource {
 public:
  // Tensors from `dict` (kept alive by the caller), cast to `dtype` (a zero-copy view when the
  // stored dtype already matches).
  WeightSource(const tensor_io::StateDict& dict, at::ScalarType dtype);
  // Random tensors (deterministic seed): weights ~ N(0, 0.02), norms ~ 1, biases small.
  static WeightSource random(at::ScalarType dtype, uint64_t seed = 0);

  enum class Kind { Weight, Bias, NormWeight, Embedding, Scalar };
  // InputError "<file>: missing tensor '<name>' (not an ImageBind checkpoint?)" or
  // "<file>: tensor '<name>' has shape [..], expected [..]".
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, Kind kind = Kind::Weight) const;
  at::ScalarType dtype() const { return dtype_; }

 private:
  WeightSource(at::ScalarType dtype, uint64_t seed) : dict_(nullptr), dtype_(dtype), seed_(seed) {}
  const tensor_io::StateDict* dict_;
  at::ScalarType dtype_;
  uint64_t seed_ = 0;
  mutable uint64_t counter_ = 0;
};

}  // namespace omnibind::experts::imagebind
