// omnibind inspect: what a checkpoint holds (format, preset detected, spaces, heads, widths,
// routers, parameter count, dtypes). Works on any checkpoint; OmniBind head files get the details.
// On a model bundle directory: its spaces, files (size, sha256, present/size ok; --verify
// re-hashes), an estimate of the memory each modality needs, and the precision.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/cpu_features.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/checkpoint_family.h"
#include "omnibind/pipeline/bundle_manifest.h"
#include "omnibind/pipeline/file_digest.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::cli {
namespace {

struct InspectOptions {
  std::string path, select = "auto";
  bool json = false, verify = false;
};

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, bytes >= 1e9 ? "%.2f GB" : "%.1f MB", bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6);
  return buf;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Bytes the tensors of a weights file take once loaded at `precision` (floating tensors at 4 or 2
// bytes, others as stored); -1 when the file cannot be read as a checkpoint.
int64_t loaded_bytes(const std::string& path, binding::Precision precision) {
  try {
    const auto sd = tensor_io::load_checkpoint(path);
    int64_t total = 0;
    for (auto& n : sd.names()) {
      const auto& t = sd.at(n);
      const bool floating = t.dtype == tensor_io::DType::F32 || t.dtype == tensor_io::DType::F16 ||
                            t.dtype == tensor_io::DType::BF16 || t.dtype == tensor_io::DType::F64;
      total += t.numel() * (floating ? (precision == binding::Precision::BF16 ? 2 : 4)
                                     : static_cast<int64_t>(tensor_io::dtype_size(t.dtype)));
    }
    return total;
  } catch (const std::exception&) {
    return -1;
  }
}

int run_inspect_bundle(const InspectOptions& o) {
  const fs::path dir = o.path;
  const std::string src = (dir / pipeline::kBundleManifestFile).string();
  const pipeline::BundleManifest m = pipeline::parse_bundle_manifest(read_file_bytes(src), src);
  // "auto" (or unset): what ModelBundle::load picks on this CPU.
  const std::string precision_name =
      m.precision.empty() || m.precision == "auto" ? std::string(default_precision()) : m.precision;
  const binding::Precision precision = binding::parse_precision(precision_name);
  const fs::path heads = pipeline::bundle_file_path(dir, m.heads);
  binding::BindingConfig config;
  std::string binding_what;
  if (!m.preset.empty()) {
    config = binding::preset_config(m.preset);
    binding_what = m.preset + " (preset)";
  } else if (m.binding) {
    config = *m.binding;
    binding_what = config.name + " (bundle.json)";
  } else {
    std::error_code ec;
    require(fs::is_regular_file(heads, ec), src + ": no binding and no heads file to take it from");
    const auto where = tensor_io::checkpoint_metadata_location(tensor_io::detect_checkpoint_format(heads.string()), "binding_config");
    const auto meta = tensor_io::load_checkpoint_metadata(heads.string());  // safetensors or .pt/.pth
    require(meta.count("binding_config"), src + ": no binding, and " + m.heads + " has no " + where);
    config = binding::parse_binding_config(meta.at("binding_config"), heads.string());
    binding_what = config.name + " (heads metadata)";
  }

  ojson j;
  j["bundle"] = o.path;
  j["binding"] = binding_what;
  j["precision"] = precision_name;
  if (precision_name != m.precision) j["precision_recorded"] = m.precision.empty() ? "auto" : m.precision;
  j["heads"] = {{"path", m.heads}, {"layout", m.heads_layout}};
  ojson spaces = ojson::array();
  for (auto& e : m.experts) {
    ojson x = {{"name", e.name}, {"family", e.family}};
    if (!e.size.empty()) x["size"] = e.size;
    x["modalities"] = e.modalities.empty() ? experts::family_modalities(e.family) : e.modalities;
    x["weights"] = e.weights;
    spaces.push_back(x);
  }
  j["spaces"] = spaces;

  // Files: the records convert wrote (else the manifest's files, unrecorded), checked on disk.
  std::vector<pipeline::BundleFileRecord> records = m.files;
  const bool recorded = !records.empty();
  if (!recorded) {
    std::set<std::string> seen;
    auto add = [&](const std::string& p) {
      if (!p.empty() && seen.insert(p).second) records.push_back({p, 0, ""});
    };
    add(m.heads);
    for (auto& e : m.experts) {
      add(e.weights);
      add(e.config);
      add(e.bpe);
      for (auto& v : e.vocab) add(v);
    }
  }
  int bad = 0;
  ojson files = ojson::array();
  for (auto& r : records) {
    const fs::path p = pipeline::bundle_file_path(dir, r.path);
    std::error_code ec;
    const bool present = fs::is_regular_file(p, ec);
    const uint64_t size = present ? fs::file_size(p, ec) : 0;
    ojson x = {{"path", r.path}, {"bytes", recorded ? r.bytes : size}};
    if (!r.sha256.empty()) x["sha256"] = r.sha256;
    std::string status = !present ? "missing" : !recorded ? "present (not recorded)" : size == r.bytes ? "size ok"
                                                                                                       : "size differs (" + std::to_string(size) + " bytes on disk)";
    bad += !present || (recorded && size != r.bytes);
    if (o.verify && present && !r.sha256.empty() && size == r.bytes) {
      std::function<void(uint64_t, uint64_t)> cb;
      if (isatty(2) && size >= (256ull << 20))
        cb = [&](uint64_t d, uint64_t t) {
          std::fprintf(stderr, "\rinspect: sha256 %s %3d%%%s", r.path.c_str(), t ? int(100.0 * d / t) : 100, d >= t ? "\n" : "");
        };
      const bool same = pipeline::sha256_file(p.string(), cb) == r.sha256;
      status = same ? "sha256 ok" : "sha256 differs";
      bad += !same;
    }
    x["status"] = status;
    files.push_back(x);
  }
  j["files"] = files;

  // Memory per modality: the weights of the distinct experts the modality runs + the heads.
  const int64_t heads_bytes = loaded_bytes(heads.string(), precision);
  std::map<std::string, int64_t> weights_bytes;
  ojson memory = ojson::object();
  for (auto& mod : binding::all_modalities()) {
    const auto required = config.required_inputs(mod);
    if (required.empty()) continue;
    std::set<std::string> instances;
    std::vector<std::string> lacking;
    int64_t total = heads_bytes < 0 ? 0 : heads_bytes;
    bool unknown = heads_bytes < 0;
    for (auto& n : required) {
      const pipeline::BundleExpert* feed = nullptr;
      for (auto& e : m.experts) {
        const auto mods = e.modalities.empty() ? experts::family_modalities(e.family) : e.modalities;
        if (e.name == n && (mods.empty() || has(mods, mod))) feed = &e;
      }
      if (!feed) {
        lacking.push_back(n);
        continue;
      }
      const std::string key = feed->family + "\n" + feed->weights + "\n" + feed->config + "\n" + feed->size;
      if (!instances.insert(key).second) continue;
      const std::string w = pipeline::bundle_file_path(dir, feed->weights).string();
      if (!weights_bytes.count(w)) weights_bytes[w] = loaded_bytes(w, precision);
      if (weights_bytes[w] < 0) unknown = true;
      else total += weights_bytes[w];
    }
    ojson x;
    if (!lacking.empty()) {
      x["served"] = false;
      x["lacks"] = lacking;
    } else {
      x["served"] = true;
      x["bytes"] = total;
      x["experts"] = instances.size();
      if (unknown) x["note"] = "some files could not be read; their share is not counted";
    }
    memory[mod] = x;
  }
  j["memory"] = memory;
  j["memory_note"] = "estimate from tensor sizes at the bundle's precision (expert weights each modality runs, shared "
                     "instances once, plus all heads/routers); activations and the runtime come on top";

  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("bundle:    %s\nbinding:   %s\nprecision: %s\nheads:     %s (%s layout)\n", o.path.c_str(),
                binding_what.c_str(),
                (precision_name == m.precision ? precision_name : precision_name + " (auto: this CPU's default)").c_str(),
                m.heads.c_str(), m.heads_layout.c_str());
    std::printf("spaces:\n");
    for (auto& x : spaces) {
      std::string mods;
      for (auto& v : x["modalities"]) mods += (mods.empty() ? "" : ",") + v.get<std::string>();
      std::printf("  %-16s %-10s %-10s %-12s %s\n", x["name"].get<std::string>().c_str(), x["family"].get<std::string>().c_str(),
                  x.value("size", "").c_str(), mods.c_str(), x["weights"].get<std::string>().c_str());
    }
    std::printf("files:\n");
    for (auto& x : files)
      std::printf("  %s  %llu bytes  %s  %s\n", x["path"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(x["bytes"].get<uint64_t>()), x.value("sha256", "-").c_str(),
                  x["status"].get<std::string>().c_str());
    std::printf("memory per modality (estimate from tensor sizes, %s):\n", m.precision.c_str());
    for (auto& [mod, x] : memory.items()) {
      if (!x["served"].get<bool>()) {
        std::string lacks;
        for (auto& v : x["lacks"]) lacks += (lacks.empty() ? "" : ", ") + v.get<std::string>();
        std::printf("  %-6s not served (no expert for %s)\n", mod.c_str(), lacks.c_str());
      } else {
        std::printf("  %-6s %s (%d expert instance(s) + heads)%s\n", mod.c_str(), gb(double(x["bytes"].get<int64_t>())).c_str(),
                    x["experts"].get<int>(), x.contains("note") ? " (some files unreadable: not counted)" : "");
      }
    }
  }
  require(bad == 0, o.path + ": " + std::to_string(bad) + " file(s) differ from bundle.json's records or are missing");
  return 0;
}

int run_inspect(const InspectOptions& o) {
  {
    std::error_code ec;
    if (fs::is_directory(o.path, ec)) {
      require(fs::is_regular_file(fs::path(o.path) / pipeline::kBundleManifestFile, ec),
              o.path + ": a directory without " + pipeline::kBundleManifestFile + " (not a model bundle)");
      return run_inspect_bundle(o);
    }
  }
  require(!o.verify, "--verify re-hashes a model bundle's files: give a bundle directory");
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
  if (const auto family = experts::detect_checkpoint_family(sd);
      !family.family.empty() && family.family != "omnibind-heads" && family.family != "wavcaps" && family.family != "clap")
    j["kind"] = family.description;  // audio-text families: the detailed block below
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
  app.add_option("CHECKPOINT", o->path, "A .pt/.pth/.safetensors file, or a model bundle directory")->required();
  app.add_option("--select", o->select, "Sub-dict holding the state dict ('auto', '' or a key)")->capture_default_str();
  app.add_flag("--json", o->json, "Print JSON");
  app.add_flag("--verify", o->verify, "Bundle: re-hash every recorded file and compare with bundle.json (exit 2 on a difference)");
  return [o] { return run_inspect(*o); };
}

REGISTER_VERB("inspect", "Show what a checkpoint or model bundle holds (spaces, heads, widths, dtypes; files, memory)", setup_inspect);

}  // namespace
}  // namespace omnibind::cli
