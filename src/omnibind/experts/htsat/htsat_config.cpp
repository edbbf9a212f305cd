#include "omnibind/experts/htsat/htsat_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::htsat {
namespace {

std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Reads JSON fields into a config, naming `source` in every error.
struct Reader {
  const std::string& source;

  void integer(const nlohmann::json& o, const char* key, int64_t& out) const {
    if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
    const auto& v = o[key];
    // [4, 4] (patch_stride) is accepted when both entries agree.
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[0] == v[1]) {
      out = v[0].get<int64_t>();
    } else if (v.is_number_integer()) {
      out = v.get<int64_t>();
    } else {
      throw InputError(source + ": '" + key + "' must be a positive integer");
    }
    if (out <= 0) throw InputError(source + ": '" + key + "' must be a positive integer");
  }
  void list(const nlohmann::json& o, const char* key, std::vector<int64_t>& out) const {
    if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
    const auto& v = o[key];
    if (!v.is_array() || v.empty()) throw InputError(source + ": '" + key + "' must be a non-empty list of integers");
    std::vector<int64_t> r;
    for (const auto& e : v) {
      if (!e.is_number_integer() || e.get<int64_t>() <= 0)
        throw InputError(source + ": '" + key + "' must be a list of positive integers");
      r.push_back(e.get<int64_t>());
    }
    out = r;
  }
  void number(const nlohmann::json& o, const char* key, double& out) const {
    if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
    if (!o[key].is_number() || o[key].get<double>() <= 0) throw InputError(source + ": '" + key + "' must be a positive number");
    out = o[key].get<double>();
  }
  void boolean(const nlohmann::json& o, const char* key, bool& out) const {
    if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
    if (!o[key].is_boolean()) throw InputError(source + ": '" + key + "' must be true or false");
    out = o[key].get<bool>();
  }
  // CLAP's fusion_type: only 'aff_2d' is a released (OmniBind) configuration.
  void fusion_type(const nlohmann::json& o, bool enable, HtsatConfig& c) const {
    if (!enable) {
      c.fusion = false;
      return;
    }
    std::string t = "aff_2d";
    if (o.is_object() && o.contains("fusion_type") && o["fusion_type"].is_string()) t = o["fusion_type"].get<std::string>();
    if (t != "aff_2d")
      throw InputError(source + ": CLAP fusion_type '" + t + "' is not supported (only 'aff_2d', the released fusion model)");
    c.fusion = true;
  }
};

HtsatConfig tower(const char* name, int64_t embed, std::vector<int64_t> depths, int64_t proj, bool fusion) {
  HtsatConfig c;
  c.name = name;
  c.embed_dim = embed;
  c.depths = std::move(depths);
  c.heads = {4, 8, 16, 32};
  c.proj_dim = proj;
  c.fusion = fusion;
  return c;
}

}  // namespace

void HtsatConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& what) { throw InputError(source + ": invalid HTSAT config: " + what); };
  if (depths.empty()) bad("no stages (depths is empty)");
  if (heads.size() != depths.size())
    bad("depths " + list_str(depths) + " and num_heads " + list_str(heads) + " differ in length");
  if (embed_dim <= 0 || window <= 0 || patch <= 0 || patch_stride <= 0 || spec_size <= 0 || mel_bins <= 0 || frames <= 0)
    bad("sizes must be positive");
  if (patch != patch_stride) bad("patch_size != patch_stride (overlapping patches are not a released HTSAT)");
  if (spec_size % mel_bins != 0 || spec_size / mel_bins < 1)
    bad("spec_size " + std::to_string(spec_size) + " is not a multiple of mel_bins " + std::to_string(mel_bins));
  if (frames > spec_size * freq_ratio())
    bad(std::to_string(frames) + " mel frames exceed spec_size * freq_ratio = " + std::to_string(spec_size * freq_ratio()));
  if (spec_size % patch_stride != 0) bad("spec_size is not a multiple of patch_stride");
  int64_t res = grid();
  for (int64_t i = 0; i < num_layers(); ++i) {
    const int64_t dim = embed_dim << i;
    if (heads[i] <= 0 || dim % heads[i] != 0)
      bad("stage " + std::to_string(i) + " width " + std::to_string(dim) + " is not divisible by " + std::to_string(heads[i]) + " heads");
    const int64_t w = res <= window ? res : window;
    if (res % w != 0)
      bad("stage " + std::to_string(i) + " resolution " + std::to_string(res) + " is not a multiple of window " + std::to_string(w));
    if (i + 1 < num_layers()) {
      if (res % 2 != 0) bad("stage " + std::to_string(i) + " resolution " + std::to_string(res) + " is odd (patch merging)");
      res /= 2;
    }
  }
  // The reference's final reshape (SF = frames // 2^(L-1) // stride, grouped by freq_ratio).
  if (res % freq_ratio() != 0)
    bad("final resolution " + std::to_string(res) + " is not a multiple of freq_ratio " + std::to_string(freq_ratio()));
  if (fusion && embed_dim / aff_r <= 0) bad("embed_dim too small for the AFF reduction");
}

HtsatConfig htsat_preset(const std::string& name) {
  // WavCaps models/audio_encoder.py and CLAP clap_module/htsat.py create_htsat_model (hard-coded kwargs).
  if (name == "wavcaps" || name.empty()) return tower("wavcaps", 96, {2, 2, 6, 2}, 1024, false);
  if (name == "clap-tiny") return tower("clap-tiny", 96, {2, 2, 6, 2}, 512, false);
  if (name == "clap-fusion") return tower("clap-fusion", 96, {2, 2, 6, 2}, 512, true);
  if (name == "clap-base") return tower("clap-base", 128, {2, 2, 12, 2}, 512, false);
  throw InputError("unknown HTSAT preset '" + name + "' (expected wavcaps, clap-tiny, clap-fusion or clap-base)");
}

HtsatConfig htsat_config_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  if (!j.is_object()) throw InputError(source + ": HTSAT config must be a JSON object");
  Reader r{source};
  HtsatConfig c;
  if (j.contains("htsat_kwargs_effective") || j.contains("inference_yaml")) {
    // wavcaps_mini config.json (WavCaps AudioEncoder kwargs + settings/inference.yaml).
    c = htsat_preset("wavcaps");
    const nlohmann::json& k = j.contains("htsat_kwargs_effective") ? j["htsat_kwargs_effective"] : nlohmann::json::object();
    r.integer(k, "embed_dim", c.embed_dim);
    r.list(k, "depths", c.depths);
    r.list(k, "num_heads", c.heads);
    r.integer(k, "window_size", c.window);
    r.integer(k, "spec_size", c.spec_size);
    r.integer(k, "patch_size", c.patch);
    r.integer(k, "patch_stride", c.patch_stride);
    r.integer(k, "num_classes", c.num_classes);
    if (j.contains("inference_yaml") && j["inference_yaml"].is_object()) {
      const auto& y = j["inference_yaml"];
      r.integer(y, "embed_size", c.proj_dim);
      if (y.contains("audio_args")) r.integer(y["audio_args"], "n_mels", c.mel_bins);
    }
    r.integer(j, "embed_size", c.proj_dim);
    if (j.contains("htsat_fixed_in_code")) {
      r.number(j["htsat_fixed_in_code"], "mlp_ratio", c.mlp_ratio);
      r.number(j["htsat_fixed_in_code"], "layernorm_eps", c.ln_eps);
      r.number(j["htsat_fixed_in_code"], "batchnorm_eps", c.bn_eps);
    }
  } else if (j.contains("amodel") || j.contains("model_cfg") || j.contains("htsat_overrides")) {
    // clap_mini config.json (create_htsat_model preset + overrides, CLAP model_cfg).
    std::string amodel = j.contains("amodel") && j["amodel"].is_string() ? j["amodel"].get<std::string>() : "HTSAT-tiny";
    const nlohmann::json& cfg = j.contains("model_cfg") ? j["model_cfg"] : nlohmann::json::object();
    if (cfg.is_object() && cfg.contains("audio_cfg") && cfg["audio_cfg"].contains("model_name") &&
        cfg["audio_cfg"]["model_name"].is_string())
      amodel = "HTSAT-" + cfg["audio_cfg"]["model_name"].get<std::string>();
    if (amodel == "HTSAT-tiny") c = htsat_preset("clap-tiny");
    else if (amodel == "HTSAT-base") c = htsat_preset("clap-base");
    else throw InputError(source + ": CLAP audio model '" + amodel + "' is not supported (expected HTSAT-tiny or HTSAT-base)");
    bool fusion = false;
    r.boolean(cfg, "enable_fusion", fusion);
    r.fusion_type(cfg, fusion, c);
    if (c.fusion) c.name = "clap-fusion";
    if (j.contains("htsat_overrides")) {
      const auto& o = j["htsat_overrides"];
      r.integer(o, "embed_dim", c.embed_dim);
      r.list(o, "depths", c.depths);
      r.list(o, "num_heads", c.heads);
    }
    if (j.contains("htsat_fixed")) {
      const auto& f = j["htsat_fixed"];
      r.integer(f, "spec_size", c.spec_size);
      r.integer(f, "patch_size", c.patch);
      r.integer(f, "patch_stride", c.patch_stride);
      r.integer(f, "window_size", c.window);
      r.number(f, "mlp_ratio", c.mlp_ratio);
    }
    if (cfg.is_object()) {
      r.integer(cfg, "joint_embed_shape", c.proj_dim);
      if (cfg.contains("audio_cfg")) {
        r.integer(cfg["audio_cfg"], "mel_bins", c.mel_bins);
        r.integer(cfg["audio_cfg"], "class_num", c.num_classes);
      }
    }
  } else {
    // Flat object with the HtsatConfig field names.
    if (j.contains("preset") && j["preset"].is_string()) c = htsat_preset(j["preset"].get<std::string>());
    if (j.contains("name") && j["name"].is_string()) c.name = j["name"].get<std::string>();
    r.integer(j, "embed_dim", c.embed_dim);
    r.list(j, "depths", c.depths);
    r.list(j, "heads", c.heads);
    r.integer(j, "window", c.window);
    r.integer(j, "patch", c.patch);
    r.integer(j, "patch_stride", c.patch_stride);
    r.integer(j, "spec_size", c.spec_size);
    r.integer(j, "mel_bins", c.mel_bins);
    r.integer(j, "frames", c.frames);
    r.number(j, "mlp_ratio", c.mlp_ratio);
    r.boolean(j, "fusion", c.fusion);
    r.integer(j, "aff_r", c.aff_r);
    r.integer(j, "num_classes", c.num_classes);
    r.integer(j, "proj_dim", c.proj_dim);
    r.number(j, "ln_eps", c.ln_eps);
    r.number(j, "bn_eps", c.bn_eps);
  }
  c.validate(source);
  return c;
}

HtsatConfig htsat_config_from_json_file(const std::string& path) {
  return htsat_config_from_json(read_file_bytes(path), path);
}

}  // namespace omnibind::experts::htsat
