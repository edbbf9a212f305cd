// omnibind inspect: what a checkpoint holds (format, preset detected, spaces, heads, widths,
// routers, parameter count, dtypes). Works on any checkpoint; OmniBind head files get the details.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/cli/verb.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/open_clip/open_clip_config.h"
#include "omnibind/experts/siglip/siglip_expert.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::cli {
namespace {

struct InspectOptions {
  std::string path, select = "auto";
  bool json = false;
};

int run_inspect(const InspectOptions& o) {
  const auto format = tensor_io::detect_checkpoint_format(o.path);
  auto sd = tensor_io::load_checkpoint(o.path, {o.select});
  auto s = binding::summarize_checkpoint(sd);
  nlohmann::ordered_json j;
  j["file"] = o.path;
  j["format"] = tensor_io::checkpoint_format_name(format);
  j["tensors"] = sd.size();
  j["parameters"] = s.parameters;
  j["dtypes"] = s.dtype_counts;
  const bool is_omnibind = s.projector_heads > 0 || s.ib_heads > 0;
  j["kind"] = is_omnibind ? "omnibind projector/router checkpoint" : "other";
  if (const auto siglip = experts::describe_siglip_checkpoint(sd); !siglip.empty()) j["kind"] = siglip;
  if (const auto eva = experts::eva_clip::describe_checkpoint(sd)) j["kind"] = *eva;
  if (const auto oc = experts::open_clip::describe_checkpoint(sd)) j["kind"] = *oc + " (expert open_clip)";
  if (is_omnibind) {
    const int64_t k = s.ib_heads > 0 ? s.ib_heads : 7;
    j["preset"] = s.preset.empty() ? "custom" : s.preset;
    j["projector_heads"] = s.projector_heads;
    j["imagebind_heads"] = s.ib_heads;
    j["heads_per_space"] = k;
    j["spaces"] = s.space_input_dims.size() + (s.ib_heads > 0 ? 1 : 0);
    j["space_input_dims"] = s.space_input_dims;
    j["projector_hidden"] = s.hidden;
    j["unified_dim"] = s.unified;
    j["router_hidden"] = s.router_hidden;
    nlohmann::ordered_json routers = nlohmann::ordered_json::object();
    for (auto& [m, n] : s.router_outputs) routers[m] = {{"inputs", s.router_inputs[m]}, {"slots", n}};
    j["routers"] = routers;
    if (!s.preset.empty()) {
      auto config = binding::preset_config(s.preset);
      nlohmann::ordered_json slots = nlohmann::ordered_json::object();
      for (auto& m : binding::all_modalities()) slots[m] = config.slots(m);
      j["slots"] = slots;
    }
  } else if (auto at = experts::audio_text::describe(sd); !at.empty()) {
    // WavCaps HTSAT-BERT / LAION-CLAP checkpoints: family, OmniBind keys, widths.
    for (auto& [k, v] : at.items()) j[k] = v;
  } else {
    // Group by the first name component so big model files stay readable.
    std::map<std::string, int64_t> groups;
    for (auto& n : sd.names()) groups[n.substr(0, n.find('.'))] += sd.at(n).numel();
    j["top_level"] = groups;
  }
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (auto& [k, v] : j.items()) {
    std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    std::printf("%-18s %s\n", (k + ":").c_str(), value.c_str());
  }
  return 0;
}

VerbRun setup_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  app.add_option("CHECKPOINT", o->path, "A .pt/.pth/.safetensors file")->required();
  app.add_option("--select", o->select, "Sub-dict holding the state dict ('auto', '' or a key)")->capture_default_str();
  app.add_flag("--json", o->json, "Print JSON");
  return [o] { return run_inspect(*o); };
}

REGISTER_VERB("inspect", "Show what a checkpoint holds (preset, spaces, heads, widths, dtypes)", setup_inspect);

}  // namespace
}  // namespace omnibind::cli
