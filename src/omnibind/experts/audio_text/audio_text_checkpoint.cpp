#include "omnibind/experts/audio_text/audio_text_checkpoint.h"

#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::audio_text {
namespace {

const char* kWavCapsAudio = "audio_encoder.audio_enc.patch_embed.proj.weight";
const char* kWavCapsText = "text_encoder.text_encoder.embeddings.word_embeddings.weight";
const char* kClapAudio = "audio_branch.patch_embed.proj.weight";
const char* kClapText = "text_branch.embeddings.word_embeddings.weight";
const char* kClapFusion = "audio_branch.patch_embed.mel_conv2d.weight";

std::vector<int64_t> shape_of(const tensor_io::StateDict& sd, const std::string& name) {
  return sd.contains(name) ? sd.at(name).shape : std::vector<int64_t>{};
}

int64_t dim_of(const tensor_io::StateDict& sd, const std::string& name, size_t axis) {
  auto s = shape_of(sd, name);
  return axis < s.size() ? s[axis] : 0;
}

// HTSAT widths from a tower prefix ("audio_encoder.audio_enc." / "audio_branch.").
nlohmann::ordered_json htsat_summary(const tensor_io::StateDict& sd, const std::string& p) {
  nlohmann::ordered_json j;
  j["embed_dim"] = dim_of(sd, p + "patch_embed.proj.weight", 0);
  std::vector<int64_t> depths, heads;
  for (int64_t i = 0;; ++i) {
    const std::string layer = p + "layers." + std::to_string(i) + ".blocks.";
    int64_t d = 0;
    while (sd.contains(layer + std::to_string(d) + ".norm1.weight")) ++d;
    if (d == 0) break;
    depths.push_back(d);
    heads.push_back(dim_of(sd, layer + "0.attn.relative_position_bias_table", 1));
  }
  j["depths"] = depths;
  j["heads"] = heads;
  j["num_features"] = dim_of(sd, p + "norm.weight", 0);
  j["classes"] = dim_of(sd, p + "head.weight", 0);
  return j;
}

nlohmann::ordered_json text_summary(const tensor_io::StateDict& sd, const std::string& p) {
  nlohmann::ordered_json j;
  j["hidden"] = dim_of(sd, p + "embeddings.word_embeddings.weight", 1);
  int64_t layers = 0;
  while (sd.contains(p + "encoder.layer." + std::to_string(layers) + ".attention.self.query.weight")) ++layers;
  j["layers"] = layers;
  j["intermediate"] = dim_of(sd, p + "encoder.layer.0.intermediate.dense.weight", 0);
  j["vocab"] = dim_of(sd, p + "embeddings.word_embeddings.weight", 0);
  j["max_positions"] = dim_of(sd, p + "embeddings.position_embeddings.weight", 0);
  j["pooler"] = sd.contains(p + "pooler.dense.weight");
  return j;
}

}  // namespace

Detected detect_family(const tensor_io::StateDict& sd) {
  for (const std::string prefix : {"", "module."}) {
    if (sd.contains(prefix + kWavCapsAudio) && sd.contains(prefix + kWavCapsText)) return {Family::WavCaps, prefix};
    if (sd.contains(prefix + kClapAudio) && sd.contains(prefix + kClapText))
      return {sd.contains(prefix + kClapFusion) ? Family::ClapFusion : Family::ClapPlain, prefix};
  }
  return {};
}

std::string family_name(Family f) {
  switch (f) {
    case Family::WavCaps:
      return "WavCaps HTSAT-BERT";
    case Family::ClapFusion:
      return "LAION-CLAP fusion (HTSAT-tiny + AFF-2D, RoBERTa)";
    case Family::ClapPlain:
      return "LAION-CLAP without fusion (HTSAT, RoBERTa)";
    case Family::None:
      break;
  }
  return "";
}

nlohmann::ordered_json describe(const tensor_io::StateDict& sd) {
  const Detected d = detect_family(sd);
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (d.family == Family::None) return j;
  const std::string& p = d.prefix;
  j["kind"] = family_name(d.family) + " checkpoint";
  if (!p.empty()) j["key_prefix"] = p;
  if (d.family == Family::WavCaps) {
    j["expert"] = "wavcaps";
    j["omnibind_keys"] = "WAVCAPS_PT (--size pt), WAVCAPS_FT_aud (--size ft_aud), WAVCAPS_FT_clo (--size ft_clo)";
    auto a = htsat_summary(sd, p + "audio_encoder.audio_enc.");
    auto t = text_summary(sd, p + "text_encoder.text_encoder.");
    const int64_t proj = dim_of(sd, p + "audio_proj.2.weight", 0);
    j["audio_tower"] = a;
    j["text_tower"] = t;
    j["embed_dim"] = proj;
    const bool released = a["embed_dim"] == 96 && a["depths"] == std::vector<int64_t>{2, 2, 6, 2} &&
                          t["hidden"] == 768 && t["layers"] == 12 && t["vocab"] == 30522 && proj == 1024;
    j["sizes"] = released ? "released (HTSAT 96/[2,2,6,2], bert-base-uncased, 1024)" : "custom (needs --config)";
  } else {
    const bool fusion = d.family == Family::ClapFusion;
    j["expert"] = "clap";
    j["omnibind_keys"] = fusion ? "CLAP_G (--size fusion)" : "CLAP_M (--size base)";
    auto a = htsat_summary(sd, p + "audio_branch.");
    auto t = text_summary(sd, p + "text_branch.");
    const int64_t proj = dim_of(sd, p + "audio_projection.2.weight", 0);
    j["audio_tower"] = a;
    j["text_tower"] = t;
    j["embed_dim"] = proj;
    const bool roberta = t["hidden"] == 768 && t["layers"] == 12 && t["vocab"] == 50265 && proj == 512;
    const bool released =
        roberta && (fusion ? a["embed_dim"] == 96 && a["depths"] == std::vector<int64_t>{2, 2, 6, 2}
                           : a["embed_dim"] == 128 && a["depths"] == std::vector<int64_t>{2, 2, 12, 2});
    j["sizes"] = released ? (fusion ? "released (HTSAT-tiny + fusion, roberta-base, 512)"
                                    : "released (HTSAT-base, roberta-base, 512)")
                          : "custom (needs --config)";
  }
  return j;
}

Detected require_family(const tensor_io::StateDict& sd, bool want_wavcaps) {
  const Detected d = detect_family(sd);
  const std::string& file = sd.source();
  if (want_wavcaps) {
    if (d.family == Family::WavCaps) return d;
    if (d.family != Family::None)
      throw InputError(file + ": this is a " + family_name(d.family) +
                       " checkpoint, not a WavCaps HTSAT-BERT one (use --expert clap)");
    throw InputError(file + ": not a WavCaps HTSAT-BERT checkpoint (no '" + kWavCapsAudio + "' and '" + kWavCapsText +
                     "' tensors)");
  }
  if (d.family == Family::ClapFusion || d.family == Family::ClapPlain) return d;
  if (d.family == Family::WavCaps)
    throw InputError(file + ": this is a WavCaps HTSAT-BERT checkpoint, not a LAION-CLAP one (use --expert wavcaps)");
  throw InputError(file + ": not a LAION-CLAP checkpoint (no '" + kClapAudio + "' and '" + kClapText + "' tensors)");
}

void require_present(const WeightSource& w, const std::vector<std::string>& names) {
  if (w.family() == "random") return;
  for (const auto& n : names)
    if (!w.has(n)) w.get_raw(n, {});  // throws the standard missing-tensor message naming the file
}

std::vector<std::string> with_ddp_prefix(const std::vector<std::string>& names) {
  std::vector<std::string> out = names;
  for (const auto& n : names) out.push_back("module." + n);
  return out;
}

}  // namespace omnibind::experts::audio_text
