#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/weights_file.h"

namespace omnibind::experts::eva_clip {
namespace {

bool has_prefix(const tensor_io::StateDict& sd, const std::string& prefix) {
  for (const auto& n : sd.names())
    if (n.rfind(prefix, 0) == 0) return true;
  return false;
}

// What a state dict that is not EVA-CLIP's looks like, for the error message.
std::string guess_family(const tensor_io::StateDict& sd) {
  if (has_prefix(sd, "modality_trunks.") || has_prefix(sd, "modality_preprocessors.")) return "an ImageBind checkpoint";
  if (has_prefix(sd, "point_encoder.")) return "a Uni3D checkpoint";
  if (sd.contains("visual.conv1.weight") || has_prefix(sd, "visual.transformer.resblocks.") || has_prefix(sd, "visual.trunk."))
    return "an open_clip / OpenAI CLIP checkpoint";
  if (has_prefix(sd, "vision_model.") || has_prefix(sd, "text_model.")) return "a Hugging Face CLIP/SigLIP checkpoint";
  if (has_prefix(sd, "audio_encoder.") || has_prefix(sd, "audio_branch.")) return "an audio (CLAP/WavCaps) checkpoint";
  if (sd.empty()) return "an empty state dict";
  return "first tensor '" + sd.names().front() + "'";
}

namespace fs = std::filesystem;

// Hugging Face sharded weights: the index JSON's weight_map {tensor: shard file}; every shard
// opened (mapped) and its tensors joined in index order. InputError naming the shard on any defect.
tensor_io::StateDict open_sharded(const std::string& index_path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_bytes(index_path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(index_path + ": not a shard index (invalid JSON: " + std::string(e.what()).substr(0, 120) + ")");
  }
  require(doc.is_object() && doc.contains("weight_map") && doc["weight_map"].is_object() && !doc["weight_map"].empty(),
          index_path + ": not a shard index (no weight_map)");
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensors the index puts in it
  std::vector<std::string> order;
  for (const auto& [name, file] : doc["weight_map"].items()) {
    require(file.is_string(), index_path + ": weight_map['" + name + "'] is not a file name");
    const std::string f = file.get<std::string>();
    require(f.find('/') == std::string::npos && f != ".." && !f.empty(),
            index_path + ": weight_map['" + name + "'] = '" + f + "' is not a file beside the index");
    if (!by_shard.count(f)) order.push_back(f);
    by_shard[f].push_back(name);
  }
  std::sort(order.begin(), order.end());
  tensor_io::StateDict out(index_path);
  for (const auto& f : order) {
    const std::string shard = (dir / f).string();
    std::error_code ec;
    require(fs::is_regular_file(shard, ec), shard + ": shard missing (" + fs::path(index_path).filename().string() +
                                                " puts " + std::to_string(by_shard[f].size()) + " tensor(s) in it, first '" +
                                                by_shard[f].front() + "')");
    tensor_io::StateDict sd;
    try {
      sd = open_weights(shard);
    } catch (const InputError& e) {
      std::string why = e.what();
      why = why.substr(0, why.find('\n'));
      throw InputError(why.rfind(shard, 0) == 0 ? why : shard + ": cannot be read as a shard, truncated or damaged? (" + why + ")");
    }
    for (const auto& n : by_shard[f])
      require(sd.contains(n), shard + ": tensor '" + n + "' missing from this shard (" +
                                  fs::path(index_path).filename().string() + " puts it here; truncated or another model's shard?)");
    for (const auto& n : sd.names()) out.add(n, sd.at(n));
  }
  return out;
}

// The state dict at `path`: a weights file, a shard index, a folder holding one, or one shard of a
// sharded model (its index beside it).
tensor_io::StateDict open_any(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const char* n : {"model.safetensors.index.json", "pytorch_model.bin.index.json"})
      if (fs::is_regular_file(fs::path(path) / n, ec)) return open_sharded((fs::path(path) / n).string());
    for (const char* n : {"model.safetensors", "pytorch_model.bin"})
      if (fs::is_regular_file(fs::path(path) / n, ec)) return open_weights((fs::path(path) / n).string());
    throw InputError(path + ": a folder without model.safetensors.index.json, pytorch_model.bin.index.json, "
                            "model.safetensors or pytorch_model.bin");
  }
  const std::string file = fs::path(path).filename().string();
  if (file.size() > 11 && file.compare(file.size() - 11, 11, ".index.json") == 0) {
    require(fs::is_regular_file(path, ec), path + ": shard index not found");
    return open_sharded(path);
  }
  // "model-00002-of-00008.safetensors": the whole model through the index beside it.
  static const std::regex shard_re(R"((.*)-(\d{5})-of-(\d{5})\.(safetensors|bin))");
  std::smatch m;
  if (std::regex_match(file, m, shard_re)) {
    const std::string ext = m[4].str();
    const fs::path index = fs::path(path).parent_path() /
                           ((m[1].str() == "pytorch_model" || ext == "bin") ? m[1].str() + ".bin.index.json"
                                                                            : m[1].str() + ".safetensors.index.json");
    if (fs::is_regular_file(index, ec)) return open_sharded(index.string());
    if (m[3].str() != "00001")
      throw InputError(path + ": one shard of " + std::to_string(std::stoi(m[3].str())) + " and no " +
                       index.filename().string() + " beside it: give the index (or the folder) so every shard is read");
  }
  return open_weights(path);
}

}  // namespace

EvaClipCheckpoint open_checkpoint(const std::string& path) {
  require(!path.empty(), "eva_clip needs a weights file (--weights EVA02_CLIP_E_psz14_plus_s9B.pt)");
  // open_weights: the file must exist; load_checkpoint's "auto" unwraps a 'model'/'module'/'state_dict' dict.
  auto sd = std::make_shared<tensor_io::StateDict>(open_any(path));
  // load_state_dict: a first key starting with 'module' means every key carries "module.".
  if (!sd->empty() && sd->names().front().rfind("module.", 0) == 0)
    sd = std::make_shared<tensor_io::StateDict>(sd->with_prefix("module."));

  EvaClipCheckpoint c;
  c.dict = sd;
  // The hub port's names (BAAI/EVA-CLIP-18B): a class embedding and no pre-LayerNorm (that is HF CLIP).
  if (sd->contains("vision_model.embeddings.class_embedding") && !sd->contains("vision_model.pre_layrnorm.weight") &&
      sd->contains("text_model.embeddings.token_embedding.weight")) {
    c.layout = EvaKeyLayout::HuggingFace;
    c.text_prefix = "text_model.";
    return c;
  }
  if (!sd->contains("visual.patch_embed.proj.weight") || !sd->contains("visual.cls_token"))
    throw InputError(path + ": not an EVA-CLIP checkpoint (no 'visual.patch_embed.proj.weight'; looks like " +
                     guess_family(*sd) + ")");
  if (sd->contains("visual.blocks.0.attn.q_proj.weight") || has_prefix(*sd, "visual.rope."))
    throw InputError(path + ": an EVA02-CLIP-B/L checkpoint (sub-LN q/k/v projections, RoPE); this port implements "
                            "EVA02-CLIP-bigE (fused qkv, no RoPE)");
  // convert_to_custom_text_state_dict: old layout keeps the text tower at the top level.
  if (!sd->contains("text.positional_embedding") && sd->contains("positional_embedding")) c.text_prefix = "";
  if (!sd->contains("logit_scale") && sd->contains("text.logit_scale")) c.logit_scale_key = "text.logit_scale";
  return c;
}

namespace {
// The hub port's names (docs/reference/eva_clip_18b.md); visual_projection.bias is optional.
std::vector<std::string> hf_expected_keys(const EvaClipConfig& config) {
  std::vector<std::string> k = {"logit_scale"};
  const auto& v = config.vision;
  const std::string e = "vision_model.embeddings.";
  for (const char* n : {"class_embedding", "patch_embedding.weight", "patch_embedding.bias", "position_embedding.weight"})
    k.push_back(e + n);
  auto norm = [&](const std::string& p, bool rms) {
    k.push_back(p + ".weight");
    if (!rms) k.push_back(p + ".bias");
  };
  for (int64_t i = 0; i < v.layers; ++i) {
    const std::string b = "vision_model.encoder.layers." + std::to_string(i) + ".";
    norm(b + "layer_norm1", v.use_rms_norm);
    for (const char* n : {"q_proj", "k_proj", "v_proj"}) k.push_back(b + "self_attn." + n + ".weight");
    if (v.qkv_bias) {
      k.push_back(b + "self_attn.q_proj.bias");
      k.push_back(b + "self_attn.v_proj.bias");
    }
    for (const char* n : {"self_attn.out_proj.weight", "self_attn.out_proj.bias"}) k.push_back(b + n);
    norm(b + "layer_norm2", v.use_rms_norm);
    for (const char* n : {"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}) k.push_back(b + n);
  }
  norm("vision_model.post_layernorm", v.use_rms_norm);
  k.push_back("visual_projection.weight");
  for (const char* n : {"embeddings.token_embedding.weight", "embeddings.position_embedding.weight"})
    k.push_back(std::string("text_model.") + n);
  for (int64_t i = 0; i < config.text.layers; ++i) {
    const std::string b = "text_model.encoder.layers." + std::to_string(i) + ".";
    for (const char* n : {"layer_norm1.weight", "layer_norm1.bias", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                          "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                          "self_attn.out_proj.weight", "self_attn.out_proj.bias", "layer_norm2.weight", "layer_norm2.bias",
                          "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"})
      k.push_back(b + n);
  }
  k.push_back("text_model.final_layer_norm.weight");
  k.push_back("text_model.final_layer_norm.bias");
  k.push_back("text_projection.weight");
  return k;
}
}  // namespace

std::vector<std::string> expected_keys(const EvaClipConfig& config, const std::string& tp, const std::string& ls,
                                       EvaKeyLayout layout) {
  if (layout == EvaKeyLayout::HuggingFace) return hf_expected_keys(config);
  std::vector<std::string> k;
  k.push_back(ls);
  for (const char* n : {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"})
    k.push_back(std::string("visual.") + n);
  const auto& v = config.vision;
  for (int64_t i = 0; i < v.layers; ++i) {
    const std::string b = "visual.blocks." + std::to_string(i) + ".";
    k.push_back(b + "norm1.weight");
    if (!v.use_rms_norm) k.push_back(b + "norm1.bias");  // RMSnorm: weight only
    if (v.qkv_bias) {
      k.push_back(b + "attn.q_bias");
      k.push_back(b + "attn.v_bias");
    }
    for (const char* n : {"attn.qkv.weight", "attn.proj.weight", "attn.proj.bias", "norm2.weight"}) k.push_back(b + n);
    if (!v.use_rms_norm) k.push_back(b + "norm2.bias");
    for (const char* n : {"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}) k.push_back(b + n);
  }
  k.push_back("visual.norm.weight");
  if (!v.use_rms_norm) k.push_back("visual.norm.bias");
  k.push_back("visual.head.weight");
  if (v.qkv_bias) k.push_back("visual.head.bias");  // nn.Linear(width, embed_dim, bias=qkv_bias)
  for (const char* n : {"positional_embedding", "text_projection", "token_embedding.weight"}) k.push_back(tp + n);
  for (int64_t i = 0; i < config.text.layers; ++i) {
    const std::string b = tp + "transformer.resblocks." + std::to_string(i) + ".";
    for (const char* n : {"ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                          "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                          "mlp.c_proj.weight", "mlp.c_proj.bias"})
      k.push_back(b + n);
  }
  k.push_back(tp + "ln_final.weight");
  k.push_back(tp + "ln_final.bias");
  return k;
}

void require_complete(const EvaClipCheckpoint& ckpt, const EvaClipConfig& config) {
  std::vector<std::string> missing;
  for (const auto& n : expected_keys(config, ckpt.text_prefix, ckpt.logit_scale_key, ckpt.layout))
    if (!ckpt.dict->contains(n)) missing.push_back(n);
  if (missing.empty()) return;
  std::string list;
  for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", '" : "'") + missing[i] + "'";
  if (missing.size() > 5) list += " and " + std::to_string(missing.size() - 5) + " more";
  throw InputError(ckpt.dict->source() + ": " + std::to_string(missing.size()) +
                   " tensor(s) missing for an EVA-CLIP checkpoint of " + config.name + " (" +
                   std::to_string(config.vision.layers) + " vision / " + std::to_string(config.text.layers) +
                   " text blocks): " + list);
}

void require_config_matches(const EvaClipCheckpoint& ckpt, const EvaClipConfig& config, const std::string& expert) {
  const auto& sd = *ckpt.dict;
  const bool hf = ckpt.layout == EvaKeyLayout::HuggingFace;
  const std::string block0 = hf ? "vision_model.encoder.layers.0." : "visual.blocks.0.";
  if (!sd.contains(block0 + (hf ? "layer_norm1.weight" : "norm1.weight"))) return;  // require_complete names it
  const bool file_qkv_bias = sd.contains(block0 + (hf ? "self_attn.q_proj.bias" : "attn.q_bias"));
  const bool file_rms = !sd.contains(block0 + (hf ? "layer_norm1.bias" : "norm1.bias"));
  if (file_qkv_bias == config.vision.qkv_bias && file_rms == config.vision.use_rms_norm) return;
  auto what = [](bool qkv_bias, bool rms) {
    if (qkv_bias && !rms) return std::string("an EVA02-CLIP-bigE-style checkpoint (q/v bias, LayerNorm; expert eva_clip)");
    if (!qkv_bias && rms) return std::string("an EVA-CLIP-18B-style checkpoint (RMSNorm, no qkv bias; expert eva_clip_18b)");
    return std::string("an EVA-CLIP checkpoint with ") + (qkv_bias ? "q/v bias" : "no qkv bias") + " and " +
           (rms ? "RMSNorm" : "LayerNorm");
  };
  throw InputError(sd.source() + ": " + what(file_qkv_bias, file_rms) + ", but " + expert + " with " + config.name + " needs " +
                   what(config.vision.qkv_bias, config.vision.use_rms_norm));
}

std::optional<std::string> describe_checkpoint(const tensor_io::StateDict& sd) {
  std::string p = sd.contains("module.visual.cls_token") ? "module." : "";
  const std::string patch = p + "visual.patch_embed.proj.weight";
  if (!sd.contains(patch) || !sd.contains(p + "visual.cls_token") || !sd.contains(p + "visual.blocks.0.attn.qkv.weight"))
    return std::nullopt;
  // bigE: q_bias/v_bias and LayerNorms with bias; EVA-CLIP-18B: neither (qkv_bias false, RMSnorm).
  const bool big_e = sd.contains(p + "visual.blocks.0.attn.q_bias");
  const bool e18b = !big_e && !sd.contains(p + "visual.blocks.0.norm1.bias");
  if (!big_e && !e18b) return std::nullopt;
  auto count = [&](const std::string& prefix) {
    int64_t n = 0;
    while (sd.contains(prefix + std::to_string(n) + ".norm1.weight") ||
           sd.contains(prefix + std::to_string(n) + ".ln_1.weight"))
      ++n;
    return n;
  };
  const auto& pw = sd.at(patch).shape;  // [width, 3, P, P]
  std::string line = std::string(big_e ? "EVA-CLIP checkpoint (expert eva_clip, key EVA_E14p)"
                                       : "EVA-CLIP-18B checkpoint (expert eva_clip_18b, key EVA_18B; RMSNorm, no qkv bias)") +
                     ": vision width " + std::to_string(pw[0]) + ", " + std::to_string(count(p + "visual.blocks.")) +
                     " blocks, patch " + std::to_string(pw.size() > 2 ? pw[2] : 0);
  const std::string text = sd.contains(p + "text.token_embedding.weight") ? p + "text." : p;
  if (sd.contains(text + "token_embedding.weight"))
    line += "; text width " + std::to_string(sd.at(text + "token_embedding.weight").shape.back()) + ", " +
            std::to_string(count(text + "transformer.resblocks.")) + " blocks";
  if (sd.contains(p + "visual.head.weight")) line += "; embed " + std::to_string(sd.at(p + "visual.head.weight").shape[0]);
  return line;
}

}  // namespace omnibind::experts::eva_clip
