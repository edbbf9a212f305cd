#include "omnibind/experts/eva_clip/eva_clip_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::eva_clip {

void EvaClipConfig::validate() const {
  const auto& v = vision;
  const auto& t = text;
  auto pos = [&](int64_t x, const char* what) {
    require(x > 0, name + ": " + what + " must be positive, got " + std::to_string(x));
  };
  pos(embed_dim, "embed_dim");
  pos(v.image_size, "vision_cfg.image_size");
  pos(v.patch_size, "vision_cfg.patch_size");
  pos(v.layers, "vision_cfg.layers");
  pos(v.width, "vision_cfg.width");
  pos(v.head_width, "vision_cfg.head_width");
  require(v.mlp_ratio > 0 && v.mlp_hidden() > 0, name + ": vision_cfg.mlp_ratio must give a positive MLP width");
  require(v.heads() >= 1 && v.width % v.heads() == 0,
          name + ": vision_cfg.width " + std::to_string(v.width) + " must split into width / head_width = " +
              std::to_string(v.heads()) + " equal heads");
  require(v.image_size % v.patch_size == 0, name + ": vision_cfg.image_size must be a multiple of patch_size");
  // The image path is ImageBind's (shortest side 224, centre crop 224), as the reference's transform for 224.
  require(v.image_size == 224, name + ": vision_cfg.image_size " + std::to_string(v.image_size) +
                                   " is not supported (this port preprocesses to 224 x 224, as EVA02-CLIP-bigE-14-plus)");
  pos(t.context_length, "text_cfg.context_length");
  require(t.context_length >= 2, name + ": text_cfg.context_length must be at least 2");
  require(t.vocab_size == 49408, name + ": text_cfg.vocab_size must be 49408 (the CLIP BPE vocabulary), got " +
                                     std::to_string(t.vocab_size));
  pos(t.width, "text_cfg.width");
  pos(t.heads, "text_cfg.heads");
  pos(t.layers, "text_cfg.layers");
  require(t.width % t.heads == 0, name + ": text_cfg.width " + std::to_string(t.width) + " is not divisible by " +
                                      std::to_string(t.heads) + " heads");
}

int64_t EvaClipConfig::parameter_count() const {
  const int64_t W = vision.width, H = vision.mlp_hidden(), P = vision.patch_size, E = embed_dim;
  const int64_t norm = vision.use_rms_norm ? W : 2 * W;  // RMSnorm: weight only
  const int64_t qv_bias = vision.qkv_bias ? 2 * W : 0, head_bias = vision.qkv_bias ? E : 0;
  const int64_t vblock = norm + qv_bias + 3 * W * W + (W * W + W) + norm + (H * W + H) + (W * H + W);
  const int64_t vis = (W * 3 * P * P + W) + W + vision.tokens() * W + vision.layers * vblock + norm + (W * E + head_bias);
  const int64_t T = text.width, Ht = text.mlp_hidden();
  const int64_t tblock = 2 * T + (3 * T * T + 3 * T) + (T * T + T) + 2 * T + (Ht * T + Ht) + (T * Ht + T);
  const int64_t txt = text.context_length * T + T * E + text.vocab_size * T + text.layers * tblock + 2 * T;
  return vis + txt + 1;
}

EvaClipConfig builtin_config(const std::string& size) {
  // model_configs/EVA02-CLIP-bigE-14-plus.json (the struct defaults).
  if (size.empty() || size == "EVA02-CLIP-bigE-14-plus" || size == "bigE-14-plus" || size == "E14p" ||
      size == "EVA_E14p")
    return EvaClipConfig{};
  if (size == "EVA-CLIP-18B" || size == "18B" || size == "EVA_18B") {  // model_configs/EVA-CLIP-18B.json
    EvaClipConfig c;
    c.name = "EVA-CLIP-18B";
    c.embed_dim = 1536;
    c.vision.layers = 48;
    c.vision.width = 5120;
    c.vision.head_width = 128;
    c.vision.mlp_ratio = 5;
    c.vision.postnorm = true;
    c.vision.qkv_bias = false;
    c.vision.use_rms_norm = true;
    return c;  // text_cfg: 1280 wide, 20 heads, 32 layers, context 77 (the struct defaults)
  }
  throw InputError("unknown EVA-CLIP size '" + size +
                   "' (known: EVA02-CLIP-bigE-14-plus, alias E14p; EVA-CLIP-18B, alias 18B; or give --config FILE.json)");
}

EvaClipConfig load_config(const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()).substr(0, 160) + ")");
  }
  require(doc.is_object(), path + ": expected a JSON object (an EVA-CLIP model config)");
  const nlohmann::json& mc = doc.contains("model_config") ? doc["model_config"] : doc;
  require(mc.is_object() && mc.contains("embed_dim") && mc.contains("vision_cfg") && mc.contains("text_cfg"),
          path + ": expected an EVA-CLIP model config with embed_dim, vision_cfg and text_cfg");
  const nlohmann::json& vc = mc["vision_cfg"];
  const nlohmann::json& tc = mc["text_cfg"];
  require(vc.is_object() && tc.is_object(), path + ": vision_cfg and text_cfg must be objects");

  auto get_int = [&](const nlohmann::json& o, const std::string& where, const char* key, int64_t& out) {
    if (!o.contains(key) || o[key].is_null()) return;
    require(o[key].is_number_integer(), path + ": '" + where + key + "' must be an integer");
    out = o[key].get<int64_t>();
  };
  auto get_num = [&](const nlohmann::json& o, const std::string& where, const char* key, double& out) {
    if (!o.contains(key) || o[key].is_null()) return;
    require(o[key].is_number(), path + ": '" + where + key + "' must be a number");
    out = o[key].get<double>();
  };
  auto get_bool = [&](const nlohmann::json& o, const std::string& where, const char* key, bool dflt) {
    if (!o.contains(key) || o[key].is_null()) return dflt;
    require(o[key].is_boolean() || o[key].is_number(), path + ": '" + where + key + "' must be a boolean");
    return o[key].is_boolean() ? o[key].get<bool>() : o[key].get<double>() != 0;
  };
  // A switch this port does not implement: refuse rather than compute something else.
  auto refuse_if = [&](bool cond, const std::string& key, const std::string& why) {
    require(!cond, path + ": '" + key + "' is not supported by this EVA-CLIP port (" + why + ")");
  };

  EvaClipConfig c;
  c.name = path;
  c.embed_dim = 0;
  get_int(mc, "", "embed_dim", c.embed_dim);
  refuse_if(get_bool(mc, "", "quick_gelu", false), "quick_gelu", "EVA-CLIP towers use erf GELU");

  // CLIPVisionCfg defaults, then the file's values.
  EvaVisionConfig v;
  v.layers = 12, v.width = 768, v.head_width = 64, v.mlp_ratio = 4.0, v.patch_size = 16, v.image_size = 224;
  v.postnorm = false;
  const std::string vw = "vision_cfg.";
  require(!(vc.contains("layers") && vc["layers"].is_array()), path + ": vision_cfg.layers as a list (ModifiedResNet) is not an EVA ViT");
  get_int(vc, vw, "layers", v.layers);
  get_int(vc, vw, "width", v.width);
  get_int(vc, vw, "head_width", v.head_width);
  get_num(vc, vw, "mlp_ratio", v.mlp_ratio);
  get_int(vc, vw, "patch_size", v.patch_size);
  get_int(vc, vw, "image_size", v.image_size);
  v.postnorm = get_bool(vc, vw, "postnorm", false);
  require(vc.contains("eva_model_name") && vc["eva_model_name"].is_string(),
          path + ": vision_cfg.eva_model_name is missing (not an EVA vision tower)");
  refuse_if(vc.contains("timm_model_name") && !vc["timm_model_name"].is_null(), vw + "timm_model_name", "timm towers");
  refuse_if(get_bool(vc, vw, "rope", false), vw + "rope", "2-D rotary embeddings of EVA02-CLIP-B/L");
  refuse_if(get_bool(vc, vw, "naiveswiglu", false), vw + "naiveswiglu", "SwiGLU MLP of EVA02-CLIP-B/L");
  refuse_if(get_bool(vc, vw, "subln", false), vw + "subln", "sub-LN attention/MLP of EVA02-CLIP-B/L");
  refuse_if(get_bool(vc, vw, "global_average_pool", false), vw + "global_average_pool", "mean pooling + fc_norm");
  // qkv_bias false (EVA-CLIP-18B): no q_bias/v_bias and a head without bias (the reference ties them).
  v.qkv_bias = get_bool(vc, vw, "qkv_bias", true);
  v.use_rms_norm = get_bool(vc, vw, "use_rms_norm", false);
  refuse_if(vc.contains("ls_init_value") && !vc["ls_init_value"].is_null(), vw + "ls_init_value", "layer scale");
  // xattn (xformers attention: the same function), fusedLN (apex LayerNorm: same maths), drop_path_rate,
  // patch_dropout (identity in eval), pt_hw_seq_len / intp_freq (RoPE only) change nothing at inference.
  c.vision = v;

  // CLIPTextCfg defaults.
  EvaTextConfig t;
  t.context_length = 77, t.vocab_size = 49408, t.width = 512, t.heads = 8, t.layers = 12;
  const std::string tw = "text_cfg.";
  get_int(tc, tw, "context_length", t.context_length);
  get_int(tc, tw, "vocab_size", t.vocab_size);
  get_int(tc, tw, "width", t.width);
  get_int(tc, tw, "heads", t.heads);
  get_int(tc, tw, "layers", t.layers);
  refuse_if(!get_bool(tc, tw, "attn_mask", true), tw + "attn_mask=false", "the CLIP text tower is causal");
  refuse_if(tc.contains("hf_model_name") && !tc["hf_model_name"].is_null(), tw + "hf_model_name", "Hugging Face text towers");
  refuse_if(tc.contains("ls_init_value") && !tc["ls_init_value"].is_null(), tw + "ls_init_value", "layer scale");
  // text xattn: transformer.Attention with the same in_proj/out_proj keys and a LowerTriangularMask
  // exactly when attn_mask is set, i.e. the same function as nn.MultiheadAttention + causal mask.
  c.text = t;
  c.validate();
  return c;
}

}  // namespace omnibind::experts::eva_clip
