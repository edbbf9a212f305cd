#include "omnibind/experts/wavcaps/wavcaps_config.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::wavcaps {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void read_int(const nlohmann::json& o, const char* key, int64_t& out, const std::string& path) {
  if (!o.is_object() || !o.contains(key) || o[key].is_null()) return;
  require(o[key].is_number_integer() && o[key].get<int64_t>() > 0, path + ": '" + key + "' must be a positive integer");
  out = o[key].get<int64_t>();
}

}  // namespace

WavCapsConfig wavcaps_released_config() {
  WavCapsConfig c;
  c.htsat = htsat::htsat_preset("wavcaps");
  c.text = bert::bert_base_uncased();
  c.text.pooler = false;  // TextEncoder: BertModel.from_pretrained(..., add_pooling_layer=False)
  return c;
}

WavCapsConfig wavcaps_config_from_json_file(const std::string& path) {
  const std::string text = read_file_bytes(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  require(j.is_object(), path + ": a WavCaps config must be a JSON object");
  WavCapsConfig c = wavcaps_released_config();
  if (j.contains("htsat") && j["htsat"].is_object()) {
    c.htsat = htsat::htsat_config_from_json(j["htsat"].dump(), path + " (htsat)");
  } else {
    c.htsat = htsat::htsat_config_from_json(text, path);
  }
  const nlohmann::json* bert = nullptr;
  for (const char* key : {"bert_config_json", "bert", "text"})
    if (!bert && j.contains(key) && j[key].is_object()) bert = &j[key];
  if (bert) c.text = bert::bert_config_from_json(*bert, c.text, path);
  c.text.pooler = false;
  int64_t embed = c.htsat.proj_dim;
  int64_t sr = c.sample_rate;
  if (j.contains("inference_yaml") && j["inference_yaml"].is_object()) {
    const auto& y = j["inference_yaml"];
    read_int(y, "embed_size", embed, path);
    if (y.contains("audio_args") && y["audio_args"].is_object()) {
      read_int(y["audio_args"], "sr", sr, path);
      read_int(y["audio_args"], "hop_length", c.hop_length, path);
      read_int(y["audio_args"], "n_fft", c.n_fft, path);
    }
  }
  read_int(j, "embed_size", embed, path);
  read_int(j, "sample_rate", sr, path);
  read_int(j, "hop_length", c.hop_length, path);
  read_int(j, "n_fft", c.n_fft, path);
  c.htsat.proj_dim = embed;
  c.sample_rate = static_cast<int>(sr);
  c.clip_samples = 10 * static_cast<int64_t>(c.sample_rate);  // emb_audios: 10 s (sr * 10)
  c.htsat.frames = c.frames();
  return c;
}

std::string wavcaps_size(const std::string& size, const std::string& weights_path) {
  const std::string s = lower(size);
  if (s.empty()) {
    const std::string file = lower(std::filesystem::path(weights_path).filename().string());
    if (file.find("audiocaps") != std::string::npos) return "ft_aud";
    if (file.find("clotho") != std::string::npos) return "ft_clo";
    return "pt";
  }
  if (s == "pt") return "pt";
  if (s == "ft_aud" || s == "ft-aud" || s == "ft-audiocaps" || s == "ft_audiocaps" || s == "audiocaps") return "ft_aud";
  if (s == "ft_clo" || s == "ft-clo" || s == "ft-clotho" || s == "ft_clotho" || s == "clotho") return "ft_clo";
  throw InputError("unknown WavCaps size '" + size +
                   "' (expected pt = HTSAT-BERT-PT.pt, ft_aud = HTSAT-BERT-FT-AudioCaps.pt, ft_clo = "
                   "HTSAT-BERT-FT-Clotho.pt)");
}

std::string wavcaps_key(const std::string& canonical_size) {
  if (canonical_size == "ft_aud") return "WAVCAPS_FT_aud";
  if (canonical_size == "ft_clo") return "WAVCAPS_FT_clo";
  return "WAVCAPS_PT";
}

}  // namespace omnibind::experts::wavcaps
