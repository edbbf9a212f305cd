#include "omnibind/binding/binding_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::binding {

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

bool ExpertSpec::covers(const std::string& modality) const { return contains(modalities, modality); }

const ExpertSpec* BindingConfig::find(const std::string& name) const {
  for (auto& e : experts)
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<const ExpertSpec*> BindingConfig::projected_experts() const {
  std::vector<const ExpertSpec*> out;
  for (auto& e : experts)
    if (e.name != kImageBind && e.name != backbone) out.push_back(&e);
  return out;
}

bool BindingConfig::has_ib_slot(const std::string& modality) const {
  const ExpertSpec* ib = find(kImageBind);
  bool ib_covers = ib && ib->covers(modality);
  const ExpertSpec* bb = find(backbone);
  bool backbone_covers = backbone_in_output && bb && bb->covers(modality);
  return ib_covers || backbone_covers;
}

std::vector<std::string> BindingConfig::slots(const std::string& modality) const {
  std::vector<std::string> out;
  for (auto* e : projected_experts())
    if (e->covers(modality)) out.push_back(e->name);
  if (has_ib_slot(modality)) out.push_back(has_imagebind() && find(kImageBind)->covers(modality) ? kImageBind : backbone);
  return out;
}

std::vector<std::string> BindingConfig::required_inputs(const std::string& modality) const {
  std::vector<std::string> out;
  auto add = [&](const std::string& n) {
    if (!contains(out, n)) out.push_back(n);
  };
  for (auto* e : projected_experts())
    if (e->covers(modality)) add(e->name);
  if (const ExpertSpec* ib = find(kImageBind); ib && ib->covers(modality)) add(kImageBind);
  if (const ExpertSpec* bb = find(backbone); backbone_in_output && bb && bb->covers(modality)) add(backbone);
  auto it = router_inputs.find(modality);
  if (it != router_inputs.end())
    for (auto& n : it->second) add(n);
  return out;
}

void BindingConfig::validate() const {
  require(!experts.empty(), "binding config '" + name + "': no experts");
  require(find(backbone) != nullptr, "binding config '" + name + "': backbone '" + backbone + "' is not one of the experts");
  require(heads_per_space >= 1, "binding config '" + name + "': heads_per_space must be >= 1");
  require(text_temperature > 0, "binding config '" + name + "': text_temperature must be > 0");
  std::set<std::string> seen;
  for (auto& e : experts) {
    require(!e.name.empty(), "binding config '" + name + "': an expert has an empty name");
    require(seen.insert(e.name).second, "binding config '" + name + "': expert '" + e.name + "' listed twice");
    for (auto& m : e.modalities)
      require(contains(all_modalities(), m), "binding config '" + name + "': expert '" + e.name +
                                                 "' has unknown modality '" + m + "' (expected audio, image, point, text)");
    require(e.dim >= 0, "binding config '" + name + "': expert '" + e.name + "' has a negative dim");
  }
  for (auto& [m, names] : router_inputs) {
    require(contains(all_modalities(), m), "binding config '" + name + "': router_inputs has unknown modality '" + m + "'");
    require(!names.empty(), "binding config '" + name + "': router_inputs." + m + " is empty");
    for (auto& n : names) {
      require(find(n) != nullptr, "binding config '" + name + "': router_inputs." + m + " names unknown expert '" + n + "'");
    }
  }
  for (auto& m : all_modalities()) {
    bool has_slots = !slots(m).empty();
    bool has_router = router_inputs.count(m) != 0;
    require(has_slots == has_router || !has_slots,
            "binding config '" + name + "': modality '" + m + "' has expert spaces but no router_inputs." + m);
  }
}

namespace {

// Preset experts leave dim = 0: widths come from the checkpoint's tensor shapes, so the official
// checkpoints (CLAP 512; WavCaps, DFN, EVA-E, SigLIP-384, Uni3D, IB 1024; SigLIP-400M 1152;
// EVA-18B 1536) and any re-trained width load alike.
ExpertSpec spec(const std::string& name, std::vector<std::string> modalities, std::vector<std::string> extra = {}) {
  return ExpertSpec{name, std::move(modalities), 0, std::move(extra)};
}

// Expert lists and router inputs of the reference's get_config() ('Base', 'Large', 'Full').
BindingConfig large_like(const std::string& name, bool full) {
  BindingConfig c;
  c.name = name;
  for (auto n : {"CLAP_G", "CLAP_M"}) c.experts.push_back(spec(n, {"audio", "text"}));
  for (auto n : {"WAVCAPS_PT", "WAVCAPS_FT_aud", "WAVCAPS_FT_clo"}) c.experts.push_back(spec(n, {"audio", "text"}));
  for (auto n : {"DFN_H14", "EVA_E14p", "SigLip_384"}) c.experts.push_back(spec(n, {"image", "text"}));
  c.experts.push_back(spec("SigLip_400M_384", {"image", "text"}));
  for (auto n : {"UNI3D_L", "UNI3D_M", "UNI3D_S"}) {
    // Full's image path uses the 4 image-text experts only; Uni3D image embeddings are unused.
    if (full)
      c.experts.push_back(spec(n, {"point", "text"}, {"image"}));
    else
      c.experts.push_back(spec(n, {"point", "image", "text"}));
  }
  c.experts.push_back(spec("IB", {"audio", "image", "text"}));
  c.experts.push_back(spec("EVA_18B", {"image", "text"}));
  c.backbone = "EVA_18B";
  c.backbone_in_output = full;
  c.router_inputs = {{"audio", {"WAVCAPS_PT"}},
                     {"image", {"SigLip_400M_384"}},
                     {"point", {"UNI3D_L"}},
                     {"text", {"WAVCAPS_PT", "SigLip_400M_384", "UNI3D_L"}}};
  return c;
}

BindingConfig base_preset() {
  BindingConfig c;
  c.name = "base";
  for (auto n : {"WAVCAPS_PT", "WAVCAPS_FT_aud", "WAVCAPS_FT_clo"}) c.experts.push_back(spec(n, {"audio", "text"}));
  c.experts.push_back(spec("EVA_E14p", {"image", "text"}));
  c.experts.push_back(spec("UNI3D_L", {"point", "image", "text"}));
  c.experts.push_back(spec("IB", {"audio", "image", "text"}));
  c.experts.push_back(spec("EVA_18B", {"image", "text"}));
  c.backbone = "EVA_18B";
  c.router_inputs = {{"audio", {"WAVCAPS_PT"}},
                     {"image", {"EVA_E14p"}},
                     {"point", {"UNI3D_L"}},
                     {"text", {"WAVCAPS_PT", "EVA_E14p", "UNI3D_L"}}};
  return c;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

}  // namespace

std::vector<std::string> preset_names() { return {"base", "large", "full"}; }

BindingConfig preset_config(const std::string& name) {
  std::string n = lower(name);
  if (n == "base") return base_preset();
  if (n == "large") return large_like("large", false);
  if (n == "full") return large_like("full", true);
  throw InputError("unknown preset '" + name + "' (expected base, large or full)");
}

BindingConfig parse_binding_config(const std::string& json_text, const std::string& source) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(json_text);
  } catch (const std::exception& e) {
    throw InputError(source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  auto field_error = [&](const std::string& field, const std::string& what) {
    return InputError(source + ": field '" + field + "' " + what);
  };
  if (!j.is_object()) throw InputError(source + ": binding config must be a JSON object");
  BindingConfig c;
  c.name = j.value("name", std::string("custom"));
  if (!j.contains("experts") || !j["experts"].is_object() || j["experts"].empty())
    throw field_error("experts", "must be a non-empty object {\"NAME\": {\"modalities\": [...], \"dim\": D}}");
  for (auto& [name, e] : j["experts"].items()) {
    if (!e.is_object()) throw field_error("experts." + name, "must be an object");
    ExpertSpec s;
    s.name = name;
    if (!e.contains("modalities") || !e["modalities"].is_array())
      throw field_error("experts." + name + ".modalities", "must be an array of modality names");
    for (auto& m : e["modalities"]) {
      if (!m.is_string()) throw field_error("experts." + name + ".modalities", "must hold strings");
      s.modalities.push_back(m.get<std::string>());
    }
    if (e.contains("dim")) {
      if (!e["dim"].is_number_integer() || e["dim"].get<int64_t>() <= 0)
        throw field_error("experts." + name + ".dim", "must be a positive integer");
      s.dim = e["dim"].get<int64_t>();
    }
    if (e.contains("router_only_modalities"))
      for (auto& m : e["router_only_modalities"]) s.extra_inputs.push_back(m.get<std::string>());
    c.experts.push_back(std::move(s));
  }
  if (!j.contains("backbone") || !j["backbone"].is_string())
    throw field_error("backbone", "must name one of the experts");
  c.backbone = j["backbone"].get<std::string>();
  if (!c.find(c.backbone)) throw field_error("backbone", "names '" + c.backbone + "', which is not in experts");
  auto get_int = [&](const char* key, int64_t& out) {
    if (!j.contains(key)) return;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) throw field_error(key, "must be a positive integer");
    out = j[key].get<int64_t>();
  };
  get_int("heads_per_space", c.heads_per_space);
  get_int("projector_hidden", c.projector_hidden);
  if (j.contains("router_hidden")) {
    if (!j["router_hidden"].is_array() || j["router_hidden"].size() != 2)
      throw field_error("router_hidden", "must be two positive integers, e.g. [512, 100]");
    c.router_hidden.clear();
    for (auto& v : j["router_hidden"]) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0) throw field_error("router_hidden", "must hold positive integers");
      c.router_hidden.push_back(v.get<int64_t>());
    }
  }
  if (j.contains("text_temperature")) {
    if (!j["text_temperature"].is_number() || j["text_temperature"].get<double>() <= 0)
      throw field_error("text_temperature", "must be a positive number");
    c.text_temperature = j["text_temperature"].get<double>();
  }
  if (j.contains("backbone_in_output")) {
    if (!j["backbone_in_output"].is_boolean()) throw field_error("backbone_in_output", "must be true or false");
    c.backbone_in_output = j["backbone_in_output"].get<bool>();
  }
  if (!j.contains("router_inputs") || !j["router_inputs"].is_object())
    throw field_error("router_inputs", "must be an object {\"audio\": [\"NAME\"], ...}");
  for (auto& [m, names] : j["router_inputs"].items()) {
    std::vector<std::string> v;
    if (names.is_string()) {
      v.push_back(names.get<std::string>());
    } else if (names.is_array()) {
      for (auto& n : names) {
        if (!n.is_string()) throw field_error("router_inputs." + m, "must hold expert names");
        v.push_back(n.get<std::string>());
      }
    } else {
      throw field_error("router_inputs." + m, "must be an expert name or a list of them");
    }
    c.router_inputs[m] = v;
  }
  // The backbone is a target, not a projected space: it never has `projs` heads.
  c.validate();
  return c;
}

BindingConfig load_binding_config(const std::string& path) { return parse_binding_config(read_file_bytes(path), path); }

BindingConfig binding_config_of_checkpoint(const std::string& path) {
  const auto where = tensor_io::checkpoint_metadata_location(tensor_io::detect_checkpoint_format(path), "binding_config");
  const auto meta = tensor_io::load_checkpoint_metadata(path);
  auto it = meta.find("binding_config");
  require(it != meta.end(), path + ": has no " + where + "; pass --preset or --config");
  return parse_binding_config(it->second, path + " " + where);
}

std::string binding_config_to_json(const BindingConfig& c) {
  nlohmann::ordered_json j;
  j["name"] = c.name;
  nlohmann::ordered_json experts = nlohmann::ordered_json::object();
  for (auto& e : c.experts) {
    nlohmann::ordered_json x;
    x["modalities"] = e.modalities;
    if (e.dim) x["dim"] = e.dim;
    if (!e.extra_inputs.empty()) x["router_only_modalities"] = e.extra_inputs;
    experts[e.name] = x;
  }
  j["experts"] = experts;
  j["backbone"] = c.backbone;
  j["backbone_in_output"] = c.backbone_in_output;
  j["heads_per_space"] = c.heads_per_space;
  j["projector_hidden"] = c.projector_hidden;
  j["router_hidden"] = c.router_hidden;
  j["text_temperature"] = c.text_temperature;
  nlohmann::ordered_json ri = nlohmann::ordered_json::object();
  for (auto& m : all_modalities())
    if (c.router_inputs.count(m)) ri[m] = c.router_inputs.at(m);
  j["router_inputs"] = ri;
  return j.dump(2);
}

}  // namespace omnibind::binding
