#include "omnibind/pipeline/bundle_convert.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "omnibind/binding/folded_linear.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::pipeline {

namespace fs = std::filesystem;

ConvertExpert parse_convert_expert(const std::string& spec) {
  const std::string what = "--expert '" + spec + "'";
  const std::string form =
      " (expected NAME=FAMILY:WEIGHTS[,size=S][,config=FILE][,bpe=FILE][,vocab=FILE]...[,modalities=a+b])";
  auto eq = spec.find('=');
  require(eq != std::string::npos && eq > 0, what + ": no NAME=" + form);
  ConvertExpert e;
  e.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  auto colon = rest.find(':');
  require(colon != std::string::npos && colon > 0, what + ": no FAMILY:" + form);
  e.family = rest.substr(0, colon);
  std::stringstream parts(rest.substr(colon + 1));
  std::string part;
  bool first = true;
  while (std::getline(parts, part, ',')) {
    if (first) {
      e.weights = part;
      first = false;
      continue;
    }
    auto kv = part.find('=');
    require(kv != std::string::npos, what + ": '" + part + "' is not key=value" + form);
    const std::string k = part.substr(0, kv), v = part.substr(kv + 1);
    if (k == "size") e.size = v;
    else if (k == "config") e.config = v;
    else if (k == "bpe") e.bpe = v;
    else if (k == "vocab") e.vocab.push_back(v);
    else if (k == "modalities") {
      std::stringstream ms(v);
      std::string m;
      while (std::getline(ms, m, '+')) e.modalities.push_back(m);
    } else {
      throw InputError(what + ": unknown key '" + k + "'" + form);
    }
  }
  return e;
}

BundleManifest convert_to_bundle(const fs::path& out, const ConvertOptions& o) {
  require(!o.heads.empty(), "no heads checkpoint (--heads CKPT)");
  require(o.preset.empty() || o.config.empty(), "give at most one of --preset and --config");
  require(o.layout == "folded" || o.layout == "official", "--layout must be folded or official, got '" + o.layout + "'");
  binding::parse_precision(o.precision);
  require(!o.experts.empty(), "no experts (--expert NAME=FAMILY:WEIGHTS, one per bound space)");
  std::error_code ec;
  require(o.overwrite || !fs::exists(out, ec), out.string() + ": already exists (pass --overwrite to replace it)");

  // The heads, checked against the binding by building the model once.
  tensor_io::StateDict sd = tensor_io::load_checkpoint(o.heads, {o.select});
  BundleManifest m;
  binding::BindingConfig config;
  if (!o.preset.empty()) {
    config = binding::preset_config(o.preset);
    m.preset = config.name;
  } else if (!o.config.empty()) {
    config = binding::load_binding_config(o.config);
    m.binding = config;
  } else {
    config = binding::binding_config_of_checkpoint(o.heads);
    m.binding = config;
  }
  const binding::OmniBindModel model = binding::OmniBindModel::load(sd, config);
  if (m.binding) m.binding = model.config();  // widths as the checkpoint has them

  m.heads = "heads.safetensors";
  m.heads_layout = o.layout;
  m.precision = o.precision;
  std::vector<BundleFile> files;
  std::map<std::string, std::string> meta = {{"binding_config", binding::binding_config_to_json(model.config())},
                                             {"heads_layout", o.layout},
                                             {"converted_from", fs::path(o.heads).filename().string()}};
  if (o.layout == "folded") {
    meta["bn_eps"] = std::to_string(binding::kBatchNormEps);
    files.push_back({m.heads, "", [&model, meta](const std::string& p) { tensor_io::write_tensors(p, model.folded_tensors(), meta); }});
  } else {
    files.push_back({m.heads, "", [&sd, meta](const std::string& p) {
                       std::vector<std::pair<std::string, tensor_io::RawTensor>> ts;
                       for (auto& n : sd.names()) ts.emplace_back(n, sd.at(n));
                       tensor_io::write_safetensors(p, ts, meta);
                     }});
  }

  // Experts: files copied under experts/<NAME>/ (or referenced where they are).
  for (auto& e : o.experts) {
    BundleExpert b{e.name, e.family, "", "", e.size, "", e.modalities};
    require(config.find(e.name) != nullptr, "--expert " + e.name + ": the binding has no expert of that name");
    auto place = [&](const std::string& file, const std::string& flag) -> std::string {
      if (file.empty()) return "";
      require(fs::exists(file, ec), "--expert " + e.name + ": " + flag + " " + file + " not found");
      if (o.reference_experts || fs::is_directory(file, ec)) return fs::absolute(file).lexically_normal().string();
      const std::string rel = "experts/" + e.name + "/" + fs::path(file).filename().string();
      if (std::none_of(files.begin(), files.end(), [&](const BundleFile& f) { return f.relative == rel; }))
        files.push_back({rel, file, nullptr});
      return rel;
    };
    b.weights = place(e.weights, "weights");
    b.config = place(e.config, "config");
    b.bpe = place(e.bpe, "bpe");
    for (auto& v : e.vocab) b.vocab.push_back(place(v, "vocab"));
    m.experts.push_back(std::move(b));
  }
  if (!o.check) {
    write_bundle(out, m, files, o.overwrite);
    return m;
  }
  // Written beside `out` first and loaded (experts included): a bundle that does not load never
  // replaces anything.
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  const fs::path staging = parent / (out.filename().string() + ".check-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  write_bundle(staging, m, files);
  try {
    ModelBundle::load(staging).verify_experts();  // experts are built lazily: check each once
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  if (fs::exists(out, ec)) {
    const fs::path old = parent / (out.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::rename(out, old);
    fs::rename(staging, out);
    fs::remove_all(old, ec);
  } else {
    fs::rename(staging, out);
  }
  return m;
}

}  // namespace omnibind::pipeline
