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

  // One tensor a model asked a recording source for (see recording()).
  struct Recorded {
    std::string name;             // full name, prefixes included
    std::vector<int64_t> shape;
    Kind kind = Kind::Weight;
    at::ScalarType dtype;         // what a checkpoint of this layout stores: the source's dtype
                                  // (float32 for Kind::Scalar); get_raw(): int64 for names ending in
                                  // _ids/_index (position ids, index tables), else float32 (kind
                                  // guessed from the name)
    bool raw = false;             // asked by get_raw() (require_present asks with shape {})
  };
  // A random-weights source that also appends every tensor asked for to `log`, in request order,
  // so a caller can write a checkpoint holding exactly the keys and shapes a model of some config
  // reads (bench/make_random_release). Tensors come back uninitialised (at::empty: untouched pages,
  // so building even a multi-GB model only reserves address space; values are for writing with
  // random_values()). has() is false, require_all_used() a no-op, family() is "recording".
  static WeightSource recording(at::ScalarType dtype, std::shared_ptr<std::vector<Recorded>> log);
  // The values random(dtype, seed) gives the `index`-th tensor it is asked for (float32; the caller
  // casts): N(0, 0.02) weights, 1 + N(0, 0.05) norms, N(0, 0.01) biases, N(0, 0.1) embeddings,
  // log(20) scalars.
  static at::Tensor random_values(const std::vector<int64_t>& shape, Kind kind, uint64_t seed, uint64_t index);
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
  std::shared_ptr<std::vector<Recorded>> log_;  // recording() only
};

}  // namespace omnibind::experts
