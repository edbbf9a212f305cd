#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"

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

}  // namespace

EvaClipCheckpoint open_checkpoint(const std::string& path) {
  require(!path.empty(), "eva_clip needs a weights file (--weights EVA02_CLIP_E_psz14_plus_s9B.pt)");
  // open_weights: the file must exist; load_checkpoint's "auto" unwraps a 'model'/'module'/'state_dict' dict.
  auto sd = std::make_shared<tensor_io::StateDict>(open_weights(path));
  // load_state_dict: a first key starting with 'module' means every key carries "module.".
  if (!sd->empty() && sd->names().front().rfind("module.", 0) == 0)
    sd = std::make_shared<tensor_io::StateDict>(sd->with_prefix("module."));

  EvaClipCheckpoint c;
  c.dict = sd;
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

std::vector<std::string> expected_keys(const EvaClipConfig& config, const std::string& tp, const std::string& ls) {
  std::vector<std::string> k;
  k.push_back(ls);
  for (const char* n : {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"})
    k.push_back(std::string("visual.") + n);
  for (int64_t i = 0; i < config.vision.layers; ++i) {
    const std::string b = "visual.blocks." + std::to_string(i) + ".";
    for (const char* n : {"norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias", "attn.qkv.weight", "attn.proj.weight",
                          "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                          "mlp.fc2.weight", "mlp.fc2.bias"})
      k.push_back(b + n);
  }
  for (const char* n : {"norm.weight", "norm.bias", "head.weight", "head.bias"}) k.push_back(std::string("visual.") + n);
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
  for (const auto& n : expected_keys(config, ckpt.text_prefix, ckpt.logit_scale_key))
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

std::optional<std::string> describe_checkpoint(const tensor_io::StateDict& sd) {
  std::string p = sd.contains("module.visual.cls_token") ? "module." : "";
  const std::string patch = p + "visual.patch_embed.proj.weight";
  if (!sd.contains(patch) || !sd.contains(p + "visual.cls_token") || !sd.contains(p + "visual.blocks.0.attn.q_bias"))
    return std::nullopt;
  auto count = [&](const std::string& prefix) {
    int64_t n = 0;
    while (sd.contains(prefix + std::to_string(n) + ".norm1.weight") ||
           sd.contains(prefix + std::to_string(n) + ".ln_1.weight"))
      ++n;
    return n;
  };
  const auto& pw = sd.at(patch).shape;  // [width, 3, P, P]
  std::string line = "EVA-CLIP checkpoint (expert eva_clip, key EVA_E14p): vision width " + std::to_string(pw[0]) + ", " +
                     std::to_string(count(p + "visual.blocks.")) + " blocks, patch " + std::to_string(pw.size() > 2 ? pw[2] : 0);
  const std::string text = sd.contains(p + "text.token_embedding.weight") ? p + "text." : p;
  if (sd.contains(text + "token_embedding.weight"))
    line += "; text width " + std::to_string(sd.at(text + "token_embedding.weight").shape.back()) + ", " +
            std::to_string(count(text + "transformer.resblocks.")) + " blocks";
  if (sd.contains(p + "visual.head.weight")) line += "; embed " + std::to_string(sd.at(p + "visual.head.weight").shape[0]);
  return line;
}

}  // namespace omnibind::experts::eva_clip
