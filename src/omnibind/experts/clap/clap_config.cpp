#include "omnibind/experts/clap/clap_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::clap {
namespace {

void read_int(const nlohmann::json& o, const char* key, int64_t& out, const std::string& path) {
  if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
  require(o[key].is_number_integer() && o[key].get<int64_t>() > 0, path + ": '" + key + "' must be a positive integer");
  out = o[key].get<int64_t>();
}
void read_num(const nlohmann::json& o, const char* key, double& out, const std::string& path) {
  if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
  require(o[key].is_number() && o[key].get<double>() >= 0, path + ": '" + key + "' must be a non-negative number");
  out = o[key].get<double>();
}

}  // namespace

ClapConfig clap_released_config(const std::string& size) {
  ClapConfig c;
  if (size == "fusion" || size.empty()) {
    c.size = "fusion";
    c.htsat = htsat::htsat_preset("clap-fusion");
  } else if (size == "base") {
    c.size = "base";
    c.htsat = htsat::htsat_preset("clap-base");
  } else {
    throw InputError("unknown CLAP size '" + size + "' (expected fusion = CLAP_G or base = CLAP_M)");
  }
  c.text = bert::roberta_base();
  return c;
}

ClapConfig clap_config_from_json_file(const std::string& path) {
  const std::string text = read_file_bytes(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  require(j.is_object(), path + ": a CLAP config must be a JSON object");
  ClapConfig c = clap_released_config("fusion");
  c.htsat = j.contains("htsat") && j["htsat"].is_object()
                ? htsat::htsat_config_from_json(j["htsat"].dump(), path + " (htsat)")
                : htsat::htsat_config_from_json(text, path);
  c.size = c.htsat.fusion ? "fusion" : "base";
  const nlohmann::json* roberta = nullptr;
  for (const char* key : {"roberta_config", "roberta", "text"})
    if (!roberta && j.contains(key) && j[key].is_object()) roberta = &j[key];
  if (roberta) c.text = bert::bert_config_from_json(*roberta, c.text, path);
  c.text.pooler = true;  // CLAP reads RobertaModel's pooler_output
  const nlohmann::json* audio = nullptr;
  if (j.contains("model_cfg") && j["model_cfg"].is_object() && j["model_cfg"].contains("audio_cfg"))
    audio = &j["model_cfg"]["audio_cfg"];
  else if (j.contains("audio_cfg"))
    audio = &j["audio_cfg"];
  if (audio) {
    int64_t sr = c.audio.sample_rate;
    read_int(*audio, "sample_rate", sr, path);
    c.audio.sample_rate = static_cast<int>(sr);
    read_int(*audio, "clip_samples", c.audio.clip_samples, path);
    read_int(*audio, "window_size", c.audio.window_size, path);
    read_int(*audio, "hop_size", c.audio.hop_size, path);
    read_int(*audio, "mel_bins", c.audio.mel_bins, path);
    read_num(*audio, "fmin", c.audio.fmin, path);
    read_num(*audio, "fmax", c.audio.fmax, path);
  }
  c.htsat.frames = c.audio.chunk_frames();
  require(c.audio.mel_bins == c.htsat.mel_bins, path + ": audio_cfg.mel_bins and the HTSAT mel bins disagree");
  return c;
}

std::string clap_key(bool fusion) { return fusion ? "CLAP_G" : "CLAP_M"; }

}  // namespace omnibind::experts::clap
