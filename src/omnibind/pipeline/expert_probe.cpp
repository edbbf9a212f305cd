#include "omnibind/pipeline/expert_probe.h"

#include <map>
#include <mutex>

#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/uni3d/uni3d_config.h"
#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/tensor_io/safetensors.h"

namespace omnibind::pipeline {

namespace {

using experts::Modality;

ExpertTraits fixed(std::vector<Modality> m) { return ExpertTraits{0, std::move(m)}; }

std::map<std::string, ExpertProbe> builtin_probes() {
  std::map<std::string, ExpertProbe> p;
  // Modalities a family embeds whatever its files (widths need the weights: left to the build).
  p["imagebind"] = [](const experts::ExpertOptions&) { return fixed({Modality::Image, Modality::Audio, Modality::Text}); };
  p["wavcaps"] = [](const experts::ExpertOptions&) { return fixed({Modality::Audio, Modality::Text}); };
  p["clap"] = [](const experts::ExpertOptions&) { return fixed({Modality::Audio, Modality::Text}); };
  p["open_clip"] = [](const experts::ExpertOptions&) { return fixed({Modality::Image, Modality::Text}); };
  p["siglip"] = [](const experts::ExpertOptions&) { return fixed({Modality::Image, Modality::Text}); };
  // Widths from the config file or the built-in size (what the expert itself builds from).
  p["eva_clip"] = [](const experts::ExpertOptions& o) {
    auto c = !o.config.empty() ? experts::eva_clip::load_config(o.config) : experts::eva_clip::builtin_config(o.size);
    return ExpertTraits{c.embed_dim, {Modality::Image, Modality::Text}};
  };
  p["eva_clip_18b"] = [](const experts::ExpertOptions& o) {
    auto c = !o.config.empty() ? experts::eva_clip::load_config(o.config)
                               : experts::eva_clip::builtin_config(o.size.empty() ? "EVA-CLIP-18B" : o.size);
    return ExpertTraits{c.embed_dim, {Modality::Image, Modality::Text}};
  };
  p["uni3d"] = [](const experts::ExpertOptions& o) {
    auto c = !o.config.empty() ? experts::uni3d::uni3d_config_from_json_file(o.config)
                               : experts::uni3d::uni3d_preset(o.size);
    return ExpertTraits{c.embed_dim, {Modality::Point}};
  };
  // A pool written by `omnibind embed`: the header's metadata (the file is mapped, not read).
  p["precomputed"] = [](const experts::ExpertOptions& o) {
    auto st = tensor_io::read_safetensors(o.weights);
    ExpertTraits t;
    if (auto it = st.metadata.find("modality"); it != st.metadata.end()) t.modalities = {experts::parse_modality(it->second)};
    std::string key = o.size;
    if (key.empty() && st.tensors.names().size() == 1) key = st.tensors.names()[0];
    if (!key.empty() && st.tensors.contains(key) && st.tensors.at(key).shape.size() == 2) t.dim = st.tensors.at(key).shape[1];
    return t;
  };
  // A zoo expert file: its __metadata__.zoo_config (towers, width).
  p["zoo"] = [](const experts::ExpertOptions& o) {
    auto st = tensor_io::read_safetensors(o.weights);
    auto c = experts::zoo::zoo_config_from_json(st.metadata.at("zoo_config"), o.weights);
    ExpertTraits t{c.dim, {}};
    for (auto& m : c.modalities()) t.modalities.push_back(experts::parse_modality(m));
    return t;
  };
  return p;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, ExpertProbe>& registry() {
  static std::map<std::string, ExpertProbe> r = builtin_probes();
  return r;
}

}  // namespace

void register_expert_probe(const std::string& family, ExpertProbe probe) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[family] = std::move(probe);
}

ExpertTraits probe_expert(const std::string& family, const experts::ExpertOptions& options) {
  ExpertProbe probe;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(family);
    if (it == registry().end()) return {};
    probe = it->second;
  }
  try {
    return probe(options);
  } catch (const std::exception&) {
    return {};  // unreadable config/header: the build names the problem when the expert is needed
  }
}

}  // namespace omnibind::pipeline
