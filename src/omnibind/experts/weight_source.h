// Where a model's tensors come from: a checkpoint's state dict (checked by name and shape, cast
// to the compute dtype), or random values of the right shapes (benchmarks, no file needed).
// Shared by every expert family; `family` names the checkpoint kind in error messages.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts {

class WeightSource {
 public:
  // Tensors from `dict` (kept alive by the caller), cast to `dtype` (a zero-copy view when the
  // stored dtype already matches). `prefix` is prepended to every name asked for ("module.",
  // "audio_encoder.audio_enc."); `family` ("ImageBind", "WavCaps") appears in error messages.
  WeightSource(const tensor_io::StateDict& dict, at::ScalarType dtype, std::string family, std::string prefix = "");
  // Random tensors (deterministic seed): weights ~ N(0, 0.02), norms ~ 1, biases small.
  static WeightSource random(at::ScalarType dtype, uint64_t seed = 0);

  enum class Kind { Weight, Bias, NormWeight, Embedding, Scalar };
  // InputError "<file>: missing tensor '<name>' (not a <family> checkpoint?)" or
  // "<file>: tensor '<name>' has shape [..], expected [..]". Kind::Scalar stays float32.
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, Kind kind = Kind::Weight) const;
  // A matmul weight for `compute` (default: this source's dtype), stored by the one rule of
  // experts/mixed_matmul.h: bf16 compute -> bfloat16; fp32 compute -> the file's float32, bfloat16
  // or float16 tensor as it is (zero-copy; mixed::linear upcasts 16-bit weights exactly per call).
  // Random weights: get() in `compute`. Multiply the result with mixed::linear only.
  // (Embedding tables may be kept the same way: at::embedding(table, ids).to(kFloat) is exact.)
  at::Tensor get_matmul(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType compute,
                        Kind kind = Kind::Weight) const;
  at::Tensor get_matmul(const std::string& name, const std::vector<int64_t>& shape, Kind kind = Kind::Weight) const {
    return get_matmul(name, shape, dtype_, kind);
  }
  // As get(), but keeps the stored dtype (integer buffers such as position ids, index tables).
  at::Tensor get_raw(const std::string& name, const std::vector<int64_t>& shape) const;
  // True when the (prefixed) name is in the file; always false for random weights.
  bool has(const std::string& name) const;
  // A view of this source under a longer prefix (shares the used-key record).
  WeightSource sub(const std::string& more_prefix) const;

  // Strict key coverage (what torch's load_state_dict(strict=True) checks): InputError naming up
  // to 5 tensors of the file that no get() asked for, except names starting with one of `ignored`
  // (full names, prefix included: unused heads, optimizer leftovers). No-op for random weights.
  void require_all_used(const std::vector<std::string>& ignored = {}) const;

  at::ScalarType dtype() const { return dtype_; }
  const std::string& family() const { return family_; }

 private:
  WeightSource(at::ScalarType dtype, uint64_t seed);
  const tensor_io::StateDict* dict_ = nullptr;
  at::ScalarType dtype_;
  std::string family_, prefix_;
  uint64_t seed_ = 0;
  std::shared_ptr<uint64_t> counter_;
  std::shared_ptr<std::set<std::string>> used_;
};

}  // namespace omnibind::experts
