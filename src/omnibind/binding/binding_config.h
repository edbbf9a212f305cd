// What an OmniBind model binds: the expert spaces, the backbone, head/router widths and which
// experts' raw embeddings feed each modality's router. The official presets (base, large, full)
// are instances of this, written as data in presets.cpp; users bind their own sets with JSON.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace omnibind::binding {

// The four modalities of the unified space, in the order the reference names its routers (A, V, P, T).
inline const std::vector<std::string>& all_modalities() {
  static const std::vector<std::string> m = {"audio", "image", "point", "text"};
  return m;
}

struct ExpertSpec {
  std::string name;                     // as in the reference config, e.g. "WAVCAPS_PT", "IB"
  std::vector<std::string> modalities;  // modalities whose embeddings go through this space's heads
  int64_t dim = 0;                      // embedding width; 0 = infer from the checkpoint
  // Modalities this expert embeds only as router input (e.g. Full's Uni3D image embeddings,
  // which the reference feeds to nothing). Not projected.
  std::vector<std::string> extra_inputs;

  bool covers(const std::string& modality) const;
};

struct BindingConfig {
  std::string name = "custom";
  std::vector<ExpertSpec> experts;  // projector order = this order (IB and the backbone excluded)
  std::string backbone;  // one of `experts`: the projectors' target space; its dim is the unified dim
  bool backbone_in_output = false;  // Full: IB slot = normalize(0.1 * mean(IB heads) + 0.9 * backbone)
  int64_t heads_per_space = 7;
  int64_t projector_hidden = 2048;
  std::vector<int64_t> router_hidden = {512, 100};
  double text_temperature = 10.0;
  std::map<std::string, std::vector<std::string>> router_inputs;  // modality -> expert names

  static constexpr const char* kImageBind = "IB";  // bound through `ib_projs`, as in the reference

  const ExpertSpec* find(const std::string& name) const;
  bool has_imagebind() const { return find(kImageBind) != nullptr; }
  // Experts with their own `projs` heads, in projector order (IB and the backbone excluded).
  std::vector<const ExpertSpec*> projected_experts() const;

  // The slots (weighted terms) of `modality`'s unified embedding, in router output order:
  // projected experts covering it, then the IB slot (IB and/or backbone) when present.
  std::vector<std::string> slots(const std::string& modality) const;
  // Input keys ("<EXPERT>") a modality needs: every slot's expert plus its router inputs.
  std::vector<std::string> required_inputs(const std::string& modality) const;
  bool has_ib_slot(const std::string& modality) const;

  // InputError on an inconsistent config (unknown expert in router_inputs, bad modality, ...).
  void validate() const;
};

// "base", "large", "full" (case-insensitive); InputError naming the valid presets otherwise.
BindingConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

// Parses the JSON binding config (see docs/BINDING_CONFIG.md); InputError naming the field.
BindingConfig parse_binding_config(const std::string& json_text, const std::string& source);
BindingConfig load_binding_config(const std::string& path);
// The config a trained head carries in its metadata (what `train` writes): safetensors
// `__metadata__.binding_config`, or the `archive/extra/binding_config` record of a .pt/.pth zip;
// InputError "<path>: has no __metadata__.binding_config; pass --preset or --config" (torch files:
// "has no extra/binding_config record; ...").
BindingConfig binding_config_of_checkpoint(const std::string& path);
std::string binding_config_to_json(const BindingConfig& config);

}  // namespace omnibind::binding
