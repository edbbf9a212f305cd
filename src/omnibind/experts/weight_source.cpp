#include "omnibind/experts/weight_source.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

WeightSource::WeightSource(const tensor_io::StateDict& dict, at::ScalarType dtype, std::string family, std::string prefix)
    : dict_(&dict),
      dtype_(dtype),
      family_(std::move(family)),
      prefix_(std::move(prefix)),
      counter_(std::make_shared<uint64_t>(0)),
      used_(std::make_shared<std::set<std::string>>()) {}

WeightSource::WeightSource(at::ScalarType dtype, uint64_t seed)
    : dtype_(dtype), family_("random"), seed_(seed), counter_(std::make_shared<uint64_t>(0)),
      used_(std::make_shared<std::set<std::string>>()) {}

WeightSource WeightSource::random(at::ScalarType dtype, uint64_t seed) { return WeightSource(dtype, seed); }

WeightSource WeightSource::recording(at::ScalarType dtype, std::shared_ptr<std::vector<Recorded>> log) {
  require(log != nullptr, "WeightSource::recording needs a log");
  WeightSource s(dtype, 0);
  s.family_ = "recording";
  s.log_ = std::move(log);
  return s;
}

at::Tensor WeightSource::random_values(const std::vector<int64_t>& shape, Kind kind, uint64_t seed, uint64_t index) {
  auto gen = at::detail::createCPUGenerator(seed * 1000003ULL + index);
  at::Tensor t = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
  switch (kind) {
    case Kind::Weight: t.mul_(0.02); break;
    case Kind::Bias: t.mul_(0.01); break;
    case Kind::NormWeight: t.mul_(0.05).add_(1.0); break;
    case Kind::Embedding: t.mul_(0.1); break;
    case Kind::Scalar: t.fill_(std::log(20.0)); break;
  }
  return t;
}

WeightSource WeightSource::sub(const std::string& more_prefix) const {
  WeightSource s = *this;
  s.prefix_ += more_prefix;
  return s;
}

bool WeightSource::has(const std::string& name) const { return dict_ && dict_->contains(prefix_ + name); }

at::Tensor WeightSource::get_raw(const std::string& name, const std::vector<int64_t>& shape) const {
  if (log_) {
    // get_raw keeps the stored dtype: integer buffers are named *_ids / *_index (position ids,
    // relative position tables); everything else asked this way is float (kept-float32 tensors,
    // require_present's names).
    auto ends = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const bool integer = ends("_ids") || ends("_index");
    Kind kind = Kind::Weight;
    if (ends(".bias")) kind = Kind::Bias;
    else if (ends("LayerNorm.weight") || ends("norm.weight")) kind = Kind::NormWeight;
    else if (name.find("embeddings.") != std::string::npos || name.find("embedding") != std::string::npos) kind = Kind::Embedding;
    log_->push_back(Recorded{prefix_ + name, shape, kind, integer ? at::kLong : at::kFloat, /*raw=*/true});
    return integer ? at::zeros(shape, at::TensorOptions().dtype(at::kLong)) : at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  }
  if (!dict_) return at::zeros(shape, at::TensorOptions().dtype(at::kLong));
  const std::string full = prefix_ + name;
  const std::string& file = dict_->source();
  if (!dict_->contains(full))
    throw InputError(file + ": missing tensor '" + full + "' (not a " + family_ + " checkpoint, or the wrong config?)");
  const auto& raw = dict_->at(full);
  if (raw.shape != shape)
    throw InputError(file + ": tensor '" + full + "' has shape " + raw.shape_string() + ", expected " + shape_str(shape) +
                     " for this " + family_ + " config");
  used_->insert(full);
  return tensor_io::to_tensor(raw);
}

at::Tensor WeightSource::get(const std::string& name, const std::vector<int64_t>& shape, Kind kind) const {
  if (log_) {
    const at::ScalarType stored = kind == Kind::Scalar ? at::kFloat : dtype_;
    log_->push_back(Recorded{prefix_ + name, shape, kind, stored, /*raw=*/false});
    return at::empty(shape, at::TensorOptions().dtype(stored));
  }
  if (!dict_) {
    // Random init: each tensor gets its own generator so values do not depend on load order.
    at::Tensor t = random_values(shape, kind, seed_, (*counter_)++);
    return kind == Kind::Scalar ? t : t.to(dtype_);
  }
  at::Tensor t = get_raw(name, shape);
  const auto& raw = dict_->at(prefix_ + name);
  require(at::isFloatingType(t.scalar_type()), dict_->source() + ": tensor '" + prefix_ + name + "' has dtype " +
                                                   std::string(tensor_io::dtype_name(raw.dtype)) + ", expected a float type");
  // Scalars (logit scales) stay float32; everything else is cast to the compute dtype.
  at::ScalarType want = kind == Kind::Scalar ? at::kFloat : dtype_;
  if (t.scalar_type() != want) return t.to(want).contiguous();
  return t.is_contiguous() ? t : t.contiguous();
}

at::Tensor WeightSource::get_matmul(const std::string& name, const std::vector<int64_t>& shape,
                                    at::ScalarType compute, Kind kind) const {
  if (!dict_) {
    at::Tensor t = get(name, shape, kind);
    return t.scalar_type() == compute ? t : t.to(compute);
  }
  at::Tensor t = get_raw(name, shape);
  require(at::isFloatingType(t.scalar_type()), dict_->source() + ": tensor '" + prefix_ + name + "' has dtype " +
                                                   std::string(tensor_io::dtype_name(dict_->at(prefix_ + name).dtype)) +
                                                   ", expected a float type");
  return mixed::stored_weight(t, compute);
}

void WeightSource::require_all_used(const std::vector<std::string>& ignored) const {
  if (!dict_) return;
  std::vector<std::string> unexpected;
  for (const auto& n : dict_->names()) {
    if (used_->count(n)) continue;
    bool skip = false;
    for (const auto& p : ignored) skip = skip || n.rfind(p, 0) == 0;
    if (!skip) unexpected.push_back(n);
  }
  if (unexpected.empty()) return;
  std::string list;
  for (size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
  if (unexpected.size() > 5) list += " and " + std::to_string(unexpected.size() - 5) + " more";
  throw InputError(dict_->source() + ": " + std::to_string(unexpected.size()) + " unexpected tensor(s) for a " + family_ +
                   " checkpoint of this config: " + list);
}

}  // namespace omnibind::experts
