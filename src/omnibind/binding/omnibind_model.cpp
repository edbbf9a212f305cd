#include "omnibind/binding/omnibind_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <set>

#include "omnibind/binding/model_widths.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::binding {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  throw InputError("unknown precision '" + name + "' (expected fp32 or bf16)");
}

std::string router_prefix(const std::string& modality) {
  if (modality == "audio") return "A_enc_router.router.";
  if (modality == "image") return "V_enc_router.router.";
  if (modality == "point") return "P_enc_router.router.";
  if (modality == "text") return "T_enc_router.router.";
  throw InputError("unknown modality '" + modality + "' (expected audio, image, point or text)");
}

namespace {

// Highest "<prefix>N." index + 1 among the state dict's keys.
int64_t count_indexed(const tensor_io::StateDict& sd, const std::string& prefix) {
  int64_t n = 0;
  for (auto& name : sd.names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    size_t dot = name.find('.', prefix.size());
    if (dot == std::string::npos) continue;
    try {
      n = std::max<int64_t>(n, std::stoll(name.substr(prefix.size(), dot - prefix.size())) + 1);
    } catch (...) {
    }
  }
  return n;
}

std::string looks_like(const CheckpointSummary& s) {
  return s.preset.empty() ? std::string() : " (it looks like a '" + s.preset + "' checkpoint)";
}

}  // namespace

CheckpointSummary summarize_checkpoint(const tensor_io::StateDict& sd) {
  CheckpointSummary s;
  s.projector_heads = count_indexed(sd, "projs.");
  s.ib_heads = count_indexed(sd, "ib_projs.");
  if (sd.contains("projs.0.Head2.mlps.0.weight")) {
    s.hidden = sd.at("projs.0.Head2.mlps.0.weight").shape[0];
    if (sd.contains("projs.0.Head2.mlps.3.weight")) s.unified = sd.at("projs.0.Head2.mlps.3.weight").shape[0];
  }
  const int64_t k = s.ib_heads > 0 ? s.ib_heads : 7;
  for (int64_t i = 0; i < s.projector_heads; i += k) {
    std::string key = "projs." + std::to_string(i) + ".Head2.mlps.0.weight";
    if (sd.contains(key) && sd.at(key).shape.size() == 2) s.space_input_dims.push_back(sd.at(key).shape[1]);
  }
  for (auto& m : all_modalities()) {
    std::string p = router_prefix(m);
    if (sd.contains(p + "6.weight") && sd.at(p + "6.weight").shape.size() == 2)
      s.router_outputs[m] = sd.at(p + "6.weight").shape[0];
    if (sd.contains(p + "0.weight") && sd.at(p + "0.weight").shape.size() == 2) {
      s.router_inputs[m] = sd.at(p + "0.weight").shape[1];
      if (s.router_hidden.empty() && sd.contains(p + "3.weight"))
        s.router_hidden = {sd.at(p + "0.weight").shape[0], sd.at(p + "3.weight").shape[0]};
    }
  }
  for (auto& name : sd.names()) {
    const auto& t = sd.at(name);
    s.dtype_counts[std::string(tensor_io::dtype_name(t.dtype))]++;
    if (name.find("num_batches_tracked") == std::string::npos && name.find("running_") == std::string::npos)
      s.parameters += t.numel();
  }
  // Preset fingerprints: number of projected spaces and image router outputs.
  const int64_t spaces = static_cast<int64_t>(s.space_input_dims.size());
  const int64_t image_slots = s.router_outputs.count("image") ? s.router_outputs["image"] : -1;
  if (s.ib_heads > 0 && spaces == 5 && image_slots == 3) s.preset = "base";
  if (s.ib_heads > 0 && spaces == 12 && image_slots == 8) s.preset = "large";
  if (s.ib_heads > 0 && spaces == 12 && image_slots == 5) s.preset = "full";
  return s;
}

OmniBindModel OmniBindModel::load(const tensor_io::StateDict& sd, BindingConfig config, Precision precision) {
  config.validate();
  OmniBindModel m;
  m.precision_ = precision;
  const CheckpointSummary summary = summarize_checkpoint(sd);
  const std::string src = sd.source().empty() ? "checkpoint" : sd.source();

  // Heads per space: the IB head count when present (7 in every official checkpoint).
  if (summary.ib_heads > 0) config.heads_per_space = summary.ib_heads;
  const int64_t K = config.heads_per_space;
  auto projected = config.projected_experts();
  const int64_t expected_heads = static_cast<int64_t>(projected.size()) * K;
  require(summary.projector_heads == expected_heads,
          src + ": holds " + std::to_string(summary.projector_heads) + " projector heads (projs.N) but '" +
              config.name + "' needs " + std::to_string(projected.size()) + " spaces x " + std::to_string(K) +
              " heads = " + std::to_string(expected_heads) + looks_like(summary));
  if (config.has_imagebind())
    require(summary.ib_heads > 0, src + ": '" + config.name + "' binds ImageBind (IB) but the checkpoint has no ib_projs" +
                                      looks_like(summary));

  for (size_t i = 0; i < projected.size(); ++i) {
    const ExpertSpec* e = projected[i];
    ProjectorEnsemble p = ProjectorEnsemble::load(sd, "projs.", static_cast<int64_t>(i) * K, K);
    if (i == 0) {
      m.unified_dim_ = p.out_dim;
      m.hidden_dim_ = p.hidden;
    }
    require(p.out_dim == m.unified_dim_, src + ": space '" + e->name + "' projects to " + std::to_string(p.out_dim) +
                                             " dims but the first space to " + std::to_string(m.unified_dim_));
    m.input_dims_[e->name] = p.in_dim;
    m.spaces_.emplace(e->name, precision == Precision::BF16 ? p.with_weight_dtype(at::kBFloat16) : p);
  }
  if (config.has_imagebind()) {
    ProjectorEnsemble p = ProjectorEnsemble::load(sd, "ib_projs.", 0, K);
    if (m.unified_dim_ == 0) m.unified_dim_ = p.out_dim;
    require(p.out_dim == m.unified_dim_, src + ": ib_projs project to " + std::to_string(p.out_dim) +
                                             " dims but projs to " + std::to_string(m.unified_dim_));
    m.input_dims_[BindingConfig::kImageBind] = p.in_dim;
    m.spaces_.emplace(BindingConfig::kImageBind, precision == Precision::BF16 ? p.with_weight_dtype(at::kBFloat16) : p);
  }
  m.input_dims_[config.backbone] = m.unified_dim_;
  // Declared widths (custom configs) must agree with the checkpoint.
  check_declared_widths(config, m.input_dims_, src, "the checkpoint's heads");

  for (auto& modality : all_modalities()) {
    auto slots = config.slots(modality);
    if (slots.empty()) continue;
    const std::string prefix = router_prefix(modality);
    require(sd.contains(prefix + "0.weight"), src + ": missing tensor '" + prefix + "0.weight' (router for " + modality + ")");
    Router r = Router::load(sd, prefix);
    require(r.outputs() == static_cast<int64_t>(slots.size()),
            src + ": '" + prefix + "6.weight' routes over " + std::to_string(r.outputs()) + " slots but '" + config.name +
                "' has " + std::to_string(slots.size()) + " for " + modality + looks_like(summary));
    const int64_t in = router_input_width(config, modality, m.input_dims_, src);
    require(r.in_dim() == in, src + ": '" + prefix + "0.weight' takes " + std::to_string(r.in_dim()) + " inputs but the " +
                                  modality + " router inputs of '" + config.name + "' give " + std::to_string(in) +
                                  looks_like(summary));
    m.routers_.emplace(modality, std::move(r));
  }
  config.projector_hidden = m.hidden_dim_;
  if (!m.routers_.empty()) config.router_hidden = {m.routers_.begin()->second.l0.out_features(),
                                                   m.routers_.begin()->second.l1.out_features()};
  m.config_ = std::move(config);
  return m;
}

int64_t OmniBindModel::input_dim(const std::string& expert) const {
  auto it = input_dims_.find(expert);
  if (it == input_dims_.end()) throw InputError("expert '" + expert + "' is not part of this model");
  return it->second;
}

std::vector<std::string> OmniBindModel::modalities() const {
  std::vector<std::string> out;
  for (auto& m : all_modalities())
    if (routers_.count(m)) out.push_back(m);
  return out;
}

std::vector<std::string> OmniBindModel::required_inputs(const std::string& modality) const {
  return config_.required_inputs(modality);
}

void OmniBindModel::check_inputs(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  require(routers_.count(modality), "this model has no " + modality + " path (modalities: " +
                                        [&] {
                                          std::string s;
                                          for (auto& m : modalities()) s += (s.empty() ? "" : ", ") + m;
                                          return s;
                                        }() + ")");
  int64_t rows = -1;
  std::string first;
  for (auto& name : required_inputs(modality)) {
    const std::string key = modality + "/" + name;
    auto it = inputs.find(name);
    require(it != inputs.end(), "missing expert embeddings '" + key + "'");
    const at::Tensor& t = it->second;
    require(t.dim() == 2, "'" + key + "' must be [N, d], got " + std::to_string(t.dim()) + " dimensions");
    require(t.size(1) == input_dim(name), "'" + key + "' has width " + std::to_string(t.size(1)) + ", expected " +
                                              std::to_string(input_dim(name)));
    if (rows < 0) {
      rows = t.size(0);
      first = key;
    }
    require(t.size(0) == rows, "'" + key + "' has " + std::to_string(t.size(0)) + " rows but '" + first + "' has " +
                                   std::to_string(rows));
    require(at::isFloatingType(t.scalar_type()), "'" + key + "' must hold floating-point values");
    at::Tensor finite = at::isfinite(t).all(1);
    if (!finite.all().item<bool>()) {
      int64_t row = at::nonzero(finite.logical_not()).index({0, 0}).item<int64_t>();
      throw InputError("'" + key + "' row " + std::to_string(row) + " holds NaN or Inf");
    }
  }
  require(rows > 0, "no rows to embed for " + modality);
}

at::Tensor OmniBindModel::slot_embeddings(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  check_inputs(modality, inputs);
  return slots_unchecked(modality, inputs);
}

at::Tensor OmniBindModel::routing_weights(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  check_inputs(modality, inputs);
  return weights_unchecked(modality, inputs);
}

at::Tensor OmniBindModel::slots_unchecked(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  auto f32 = [&](const std::string& n) { return inputs.at(n).to(at::kFloat); };
  std::vector<at::Tensor> slots;
  for (auto* e : config_.projected_experts())
    if (e->covers(modality)) slots.push_back(spaces_.at(e->name).forward(f32(e->name)));
  if (config_.has_ib_slot(modality)) {
    const ExpertSpec* ib = config_.find(BindingConfig::kImageBind);
    const ExpertSpec* bb = config_.find(config_.backbone);
    const bool use_ib = ib && ib->covers(modality);
    const bool use_backbone = config_.backbone_in_output && bb && bb->covers(modality);
    at::Tensor slot;
    if (use_ib) slot = spaces_.at(BindingConfig::kImageBind).forward(f32(BindingConfig::kImageBind));
    if (use_ib && use_backbone)
      slot = slot * 0.1 + f32(config_.backbone) * 0.9;
    else if (use_backbone)
      slot = f32(config_.backbone);
    // The reference re-normalises the IB slot for image and text but not for audio.
    if (modality != "audio" || use_backbone) slot = slot / slot.norm(2, -1, true).clamp_min(1e-12);
    slots.push_back(slot);
  }
  return at::stack(slots, 1);  // [B, S, D]
}

at::Tensor OmniBindModel::weights_unchecked(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  std::vector<at::Tensor> parts;
  for (auto& n : config_.router_inputs.at(modality)) parts.push_back(inputs.at(n).to(at::kFloat));
  at::Tensor s = routers_.at(modality).scores(at::cat(parts, 1));
  if (modality == "text") s = s * config_.text_temperature;
  return at::softmax(s, -1);
}

at::Tensor OmniBindModel::embed(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const {
  check_inputs(modality, inputs);
  at::Tensor slots = slots_unchecked(modality, inputs);  // [B, S, D]
  at::Tensor w = weights_unchecked(modality, inputs);    // [B, S]
  at::Tensor u = (slots * w.unsqueeze(2)).sum(1);
  return u / u.norm(2, -1, true).clamp_min(1e-12);
}

}  // namespace omnibind::binding
