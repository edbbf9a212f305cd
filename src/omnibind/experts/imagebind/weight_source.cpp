#include "omnibind/experts/imagebind/weight_source.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts::imagebind {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

WeightSource::WeightSource(const tensor_io::StateDict& dict, at::ScalarType dtype) : dict_(&dict), dtype_(dtype) {}

WeightSource WeightSource::random(at::ScalarType dtype, uint64_t seed) { return WeightSource(dtype, seed); }

at::Tensor WeightSource::get(const std::string& name, const std::vector<int64_t>& shape, Kind kind) const {
  if (!dict_) {
    // Random init: each tensor gets its own generator so values do not depend on load order.
    auto gen = at::detail::createCPUGenerator(seed_ * 1000003ULL + counter_++);
    at::Tensor t = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
    switch (kind) {
      case Kind::Weight: t.mul_(0.02); break;
      case Kind::Bias: t.mul_(0.01); break;
      case Kind::NormWeight: t.mul_(0.05).add_(1.0); break;
      case Kind::Embedding: t.mul_(0.1); break;
      case Kind::Scalar: t.fill_(std::log(20.0)); break;
    }
    return kind == Kind::Scalar ? t : t.to(dtype_);
  }
  const std::string& file = dict_->source();
  if (!dict_->contains(name))
    throw InputError(file + ": missing tensor '" + name + "' (not an ImageBind checkpoint, or the wrong config?)");
  const auto& raw = dict_->at(name);
  if (raw.shape != shape)
    throw InputError(file + ": tensor '" + name + "' has shape " + raw.shape_string() + ", expected " + shape_str(shape) +
                     " for this ImageBind config");
  at::Tensor t = tensor_io::to_tensor(raw);
  require(at::isFloatingType(t.scalar_type()),
          file + ": tensor '" + name + "' has dtype " + std::string(tensor_io::dtype_name(raw.dtype)) + ", expected a float type");
  // Scalars (logit scales) stay float32; everything else is cast to the compute dtype.
  at::ScalarType want = kind == Kind::Scalar ? at::kFloat : dtype_;
  if (t.scalar_type() != want) return t.to(want).contiguous();
  return t.is_contiguous() ? t : t.contiguous();
}

}  // namespace omnibind::experts::imagebind
