#include "omnibind/pipeline/bundle_manifest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "omnibind/common/error.h"

namespace omnibind::pipeline {

namespace {
using json = nlohmann::ordered_json;

const std::vector<std::string> kModalities = {"audio", "image", "point", "text"};

}  // namespace

BundleManifest parse_bundle_manifest(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    throw InputError(source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  auto field_error = [&](const std::string& field, const std::string& what) {
    return InputError(source + ": field '" + field + "' " + what);
  };
  if (!j.is_object()) throw InputError(source + ": a bundle manifest must be a JSON object");
  if (j.value("format", std::string()) != "omnibind-bundle")
    throw field_error("format", "must be \"omnibind-bundle\"");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != 1)
    throw field_error("version", "must be 1 (the only version this build reads)");

  auto get_string = [&](const json& obj, const std::string& key, const std::string& field, std::string& out) {
    if (!obj.contains(key)) return;
    if (!obj[key].is_string()) throw field_error(field, "must be a string");
    out = obj[key].get<std::string>();
  };

  BundleManifest m;
  if (j.contains("binding")) {
    const json& b = j["binding"];
    if (!b.is_object()) throw field_error("binding", "must be an object: a binding config or {\"preset\": \"large\"}");
    if (b.contains("preset")) {
      if (!b["preset"].is_string()) throw field_error("binding.preset", "must be base, large or full");
      try {
        m.preset = binding::preset_config(b["preset"].get<std::string>()).name;
      } catch (const InputError& e) {
        throw field_error("binding.preset", "is invalid: " + std::string(e.what()));
      }
    } else {
      m.binding = binding::parse_binding_config(b.dump(), source + " (binding)");
    }
  }
  get_string(j, "heads", "heads", m.heads);
  if (m.heads.empty()) throw field_error("heads", "must name the heads/routers checkpoint");
  get_string(j, "heads_layout", "heads_layout", m.heads_layout);
  if (m.heads_layout != "official" && m.heads_layout != "folded")
    throw field_error("heads_layout", "must be \"official\" or \"folded\", got \"" + m.heads_layout + "\"");
  get_string(j, "precision", "precision", m.precision);
  if (!m.precision.empty() && m.precision != "fp32" && m.precision != "bf16" && m.precision != "auto")
    throw field_error("precision", "must be fp32, bf16 or auto, got \"" + m.precision + "\"");

  if (!j.contains("experts") || !j["experts"].is_array() || j["experts"].empty())
    throw field_error("experts", "must be a non-empty list of {\"name\", \"family\", \"weights\", ...}");
  std::set<std::pair<std::string, std::string>> covered;  // (name, modality) of restricted entries
  std::set<std::string> unrestricted;
  for (size_t i = 0; i < j["experts"].size(); ++i) {
    const json& e = j["experts"][i];
    const std::string f = "experts[" + std::to_string(i) + "]";
    if (!e.is_object()) throw field_error(f, "must be an object");
    BundleExpert x;
    get_string(e, "name", f + ".name", x.name);
    get_string(e, "family", f + ".family", x.family);
    if (x.name.empty()) throw field_error(f + ".name", "must name the binding-config expert it feeds");
    if (x.family.empty()) throw field_error(f + ".family", "must name an expert family (e.g. zoo, imagebind, uni3d)");
    get_string(e, "weights", f + ".weights", x.weights);
    get_string(e, "config", f + ".config", x.config);
    get_string(e, "size", f + ".size", x.size);
    get_string(e, "bpe", f + ".bpe", x.bpe);
    if (e.contains("vocab")) {
      if (!e["vocab"].is_array()) throw field_error(f + ".vocab", "must be a list of tokenizer file paths");
      for (auto& v : e["vocab"]) {
        if (!v.is_string() || v.get<std::string>().empty()) throw field_error(f + ".vocab", "must hold non-empty paths");
        x.vocab.push_back(v.get<std::string>());
      }
    }
    if (e.contains("modalities")) {
      if (!e["modalities"].is_array() || e["modalities"].empty())
        throw field_error(f + ".modalities", "must be a non-empty list of modality names");
      for (auto& mod : e["modalities"]) {
        if (!mod.is_string() || std::find(kModalities.begin(), kModalities.end(), mod.get<std::string>()) == kModalities.end())
          throw field_error(f + ".modalities", "holds an unknown modality (expected audio, image, point, text)");
        x.modalities.push_back(mod.get<std::string>());
      }
    }
    // Two entries for one binding name must split its modalities between them.
    const bool clash = unrestricted.count(x.name) ||
                       (x.modalities.empty() && std::any_of(covered.begin(), covered.end(), [&](auto& p) { return p.first == x.name; }));
    bool overlap = false;
    for (auto& mod : x.modalities) overlap |= !covered.insert({x.name, mod}).second;
    if (clash || overlap)
      throw field_error(f + ".name", "'" + x.name + "' is fed by two entries for the same modality (split them with \"modalities\")");
    if (x.modalities.empty()) unrestricted.insert(x.name);
    m.experts.push_back(std::move(x));
  }
  if (j.contains("files")) {
    if (!j["files"].is_array()) throw field_error("files", "must be a list of {\"path\", \"bytes\", \"sha256\"}");
    for (size_t i = 0; i < j["files"].size(); ++i) {
      const json& r = j["files"][i];
      const std::string f = "files[" + std::to_string(i) + "]";
      if (!r.is_object()) throw field_error(f, "must be an object");
      BundleFileRecord rec;
      get_string(r, "path", f + ".path", rec.path);
      if (rec.path.empty()) throw field_error(f + ".path", "must name a file");
      if (!r.contains("bytes") || !r["bytes"].is_number_unsigned())
        throw field_error(f + ".bytes", "must be the file's size in bytes");
      rec.bytes = r["bytes"].get<uint64_t>();
      get_string(r, "sha256", f + ".sha256", rec.sha256);
      if (!rec.sha256.empty() && (rec.sha256.size() != 64 || rec.sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
        throw field_error(f + ".sha256", "must be 64 lower-case hex digits");
      m.files.push_back(std::move(rec));
    }
  }
  return m;
}

std::filesystem::path bundle_file_path(const std::filesystem::path& dir, const std::string& path) {
  return std::filesystem::path(path).is_absolute() ? std::filesystem::path(path) : dir / path;
}

void check_recorded_sizes(const std::filesystem::path& dir, const BundleManifest& m, const std::string& source) {
  for (auto& r : m.files) {
    const auto p = bundle_file_path(dir, r.path);
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    require(!ec, p.string() + ": missing, but " + source + " records it (" + std::to_string(r.bytes) + " bytes)");
    require(size == r.bytes, p.string() + ": " + std::to_string(size) + " bytes, but " + source + " recorded " +
                                 std::to_string(r.bytes) + " when the bundle was made (replaced or truncated? "
                                 "`omnibind inspect --verify` re-hashes; re-run convert)");
  }
}

std::string bundle_manifest_to_json(const BundleManifest& m) {
  json j;
  j["format"] = "omnibind-bundle";
  j["version"] = 1;
  if (!m.preset.empty()) j["binding"] = {{"preset", m.preset}};
  else if (m.binding) j["binding"] = json::parse(binding::binding_config_to_json(*m.binding));
  j["heads"] = m.heads;
  j["heads_layout"] = m.heads_layout;
  if (!m.precision.empty()) j["precision"] = m.precision;
  j["experts"] = json::array();
  for (auto& e : m.experts) {
    json x;
    x["name"] = e.name;
    x["family"] = e.family;
    if (!e.weights.empty()) x["weights"] = e.weights;
    if (!e.config.empty()) x["config"] = e.config;
    if (!e.size.empty()) x["size"] = e.size;
    if (!e.bpe.empty()) x["bpe"] = e.bpe;
    if (!e.vocab.empty()) x["vocab"] = e.vocab;
    if (!e.modalities.empty()) x["modalities"] = e.modalities;
    j["experts"].push_back(x);
  }
  if (!m.files.empty()) {
    j["files"] = json::array();
    for (auto& r : m.files) {
      json x;
      x["path"] = r.path;
      x["bytes"] = r.bytes;
      if (!r.sha256.empty()) x["sha256"] = r.sha256;
      j["files"].push_back(x);
    }
  }
  return j.dump(2) + "\n";
}

}  // namespace omnibind::pipeline
