// OmniBindModel <-> its pre-folded buffers (BatchNorm already folded into the Linear weights), the
// layout model bundles store so that opening a head is an mmap, not a folding pass.
#include <ATen/ATen.h>

#include "omnibind/binding/model_widths.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::binding {

namespace {

// A float32 view of a stored tensor (zero copy when stored F32, else converted), rank-checked.
at::Tensor folded(const tensor_io::StateDict& sd, const std::string& key, std::vector<int64_t> shape) {
  const auto& raw = sd.at(key);
  at::Tensor t = tensor_io::to_tensor(raw);
  bool ok = t.dim() == static_cast<int64_t>(shape.size()) && at::isFloatingType(t.scalar_type());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || t.size(static_cast<int64_t>(i)) == shape[i];
  std::string want = "[";
  for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : std::to_string(shape[i]));
  require(ok, sd.source() + ": folded tensor '" + key + "' has shape " + raw.shape_string() + " (" +
                  std::string(tensor_io::dtype_name(raw.dtype)) + "), expected float " + want + "]");
  return t.scalar_type() == at::kFloat && t.is_contiguous() ? t : t.to(at::kFloat).contiguous();
}

FoldedLinear folded_linear(const tensor_io::StateDict& sd, const std::string& p, int64_t out, int64_t in) {
  FoldedLinear l;
  l.weight = folded(sd, p + ".weight", {out, in});
  l.bias = folded(sd, p + ".bias", {l.weight.size(0)});
  return l;
}

ProjectorEnsemble folded_space(const tensor_io::StateDict& sd, const std::string& name) {
  const std::string p = "space." + name + ".";
  require(sd.contains(p + "w2"), sd.source() + ": no folded heads for space '" + name + "' (missing '" + p + "w2')");
  ProjectorEnsemble e;
  e.w2 = folded(sd, p + "w2", {-1, -1, -1});
  e.heads = e.w2.size(0), e.out_dim = e.w2.size(1), e.hidden = e.w2.size(2);
  e.w1 = folded(sd, p + "w1", {e.heads * e.hidden, -1});
  e.in_dim = e.w1.size(1);
  e.b1 = folded(sd, p + "b1", {e.heads * e.hidden});
  e.b2 = folded(sd, p + "b2", {e.heads, 1, e.out_dim});
  return e;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> OmniBindModel::folded_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto f32 = [](const at::Tensor& t) { return t.to(at::kFloat).contiguous(); };
  for (auto& [name, s] : spaces_) {
    const std::string p = "space." + name + ".";
    out.emplace_back(p + "w1", f32(s.w1));
    out.emplace_back(p + "b1", f32(s.b1));
    out.emplace_back(p + "w2", f32(s.w2));
    out.emplace_back(p + "b2", f32(s.b2));
  }
  for (auto& [m, r] : routers_) {
    const std::string p = "router." + m + ".";
    const FoldedLinear* ls[] = {&r.l0, &r.l1, &r.l2};
    for (int i = 0; i < 3; ++i) {
      out.emplace_back(p + "l" + std::to_string(i) + ".weight", f32(ls[i]->weight));
      out.emplace_back(p + "l" + std::to_string(i) + ".bias", f32(ls[i]->bias));
    }
  }
  return out;
}

OmniBindModel OmniBindModel::load_folded(const tensor_io::StateDict& sd, BindingConfig config, Precision precision) {
  config.validate();
  OmniBindModel m;
  m.precision_ = precision;
  const std::string src = sd.source().empty() ? "folded heads" : sd.source();
  std::vector<std::string> names;
  for (auto* e : config.projected_experts()) names.push_back(e->name);
  if (config.has_imagebind()) names.push_back(BindingConfig::kImageBind);
  for (auto& name : names) {
    ProjectorEnsemble p = folded_space(sd, name);
    if (m.unified_dim_ == 0) {
      m.unified_dim_ = p.out_dim, m.hidden_dim_ = p.hidden;
      config.heads_per_space = p.heads;
    }
    require(p.out_dim == m.unified_dim_ && p.hidden == m.hidden_dim_ && p.heads == config.heads_per_space,
            src + ": space '" + name + "' has " + std::to_string(p.heads) + " heads " + std::to_string(p.hidden) + " -> " +
                std::to_string(p.out_dim) + ", unlike the first space (" + std::to_string(config.heads_per_space) + " heads " +
                std::to_string(m.hidden_dim_) + " -> " + std::to_string(m.unified_dim_) + ")");
    m.input_dims_[name] = p.in_dim;
    m.spaces_.emplace(name, precision == Precision::BF16 ? p.with_weight_dtype(at::kBFloat16) : p);
  }
  m.input_dims_[config.backbone] = m.unified_dim_;
  check_declared_widths(config, m.input_dims_, src, "the folded heads");
  for (auto& modality : all_modalities()) {
    auto slots = config.slots(modality);
    if (slots.empty()) continue;
    const int64_t in = router_input_width(config, modality, m.input_dims_, src);
    const std::string p = "router." + modality + ".";
    require(sd.contains(p + "l0.weight"), src + ": missing folded tensor '" + p + "l0.weight' (router for " + modality + ")");
    Router r;
    r.l0 = folded_linear(sd, p + "l0", -1, in);
    r.l1 = folded_linear(sd, p + "l1", -1, r.l0.out_features());
    r.l2 = folded_linear(sd, p + "l2", static_cast<int64_t>(slots.size()), r.l1.out_features());
    m.routers_.emplace(modality, std::move(r));
  }
  config.projector_hidden = m.hidden_dim_;
  if (!m.routers_.empty())
    config.router_hidden = {m.routers_.begin()->second.l0.out_features(), m.routers_.begin()->second.l1.out_features()};
  m.config_ = std::move(config);
  return m;
}

}  // namespace omnibind::binding
