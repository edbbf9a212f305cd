#include "omnibind/experts/open_clip/open_clip_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::open_clip {

using nlohmann::json;

void OpenClipConfig::validate() const {
  auto positive = [&](int64_t v, const char* key) {
    require(v > 0, name + ": " + key + " must be positive, got " + std::to_string(v));
  };
  positive(embed_dim, "embed_dim");
  positive(image_size, "vision_cfg.image_size");
  positive(patch_size, "vision_cfg.patch_size");
  positive(vision_width, "vision_cfg.width");
  positive(vision_layers, "vision_cfg.layers");
  positive(vision_head_width, "vision_cfg.head_width");
  positive(context_length, "text_cfg.context_length");
  positive(vocab_size, "text_cfg.vocab_size");
  positive(text_width, "text_cfg.width");
  positive(text_heads, "text_cfg.heads");
  positive(text_layers, "text_cfg.layers");
  require(vision_width % vision_head_width == 0,
          name + ": vision_cfg.width " + std::to_string(vision_width) + " is not a multiple of head_width " +
              std::to_string(vision_head_width));
  require(text_width % text_heads == 0, name + ": text_cfg.width " + std::to_string(text_width) +
                                            " is not a multiple of heads " + std::to_string(text_heads));
  require(image_size >= patch_size, name + ": vision_cfg.image_size is smaller than patch_size");
  require(vision_mlp() > 0 && text_mlp() > 0, name + ": mlp_ratio must be positive");
  // The CLIP BPE ids (49406/49407) must index the token table.
  require(vocab_size >= 49408, name + ": text_cfg.vocab_size " + std::to_string(vocab_size) +
                                   " is smaller than the CLIP BPE vocabulary (49408)");
  require(context_length >= 2, name + ": text_cfg.context_length must be at least 2");
  for (int i = 0; i < 3; ++i)
    require(std::isfinite(mean[i]) && std::isfinite(std[i]) && std[i] > 0,
            name + ": preprocess_cfg mean/std must be finite with std > 0");
}

OpenClipConfig builtin_config(const std::string& size) {
  if (size == "dfn5b-h14" || size == "DFN_H14" || size == "h14") {
    // apple/DFN5B-CLIP-ViT-H-14 open_clip_config.json (hub commit 60f1032).
    OpenClipConfig c;
    c.name = "dfn5b-h14";
    c.embed_dim = 1024;
    c.quick_gelu = true;
    c.image_size = 224;
    c.patch_size = 14;
    c.vision_width = 1280;
    c.vision_layers = 32;
    c.vision_head_width = 80;
    c.context_length = 77;
    c.vocab_size = 49408;
    c.text_width = 1024;
    c.text_heads = 16;
    c.text_layers = 24;
    c.resize_mode = ResizeMode::Squash;
    return c;
  }
  throw InputError("unknown open_clip size '" + size + "' (known: dfn5b-h14; or give --config open_clip_config.json)");
}

namespace {

// Reads one JSON object's keys against an allow-list; every reader names "<file>: <where>.<key>".
class Section {
 public:
  Section(const std::string& file, std::string where, const json& obj) : file_(file), where_(std::move(where)), obj_(obj) {
    require(obj.is_object(), file_ + ": '" + where_ + "' must be a JSON object");
  }
  std::string key_name(const std::string& k) const { return where_.empty() ? k : where_ + "." + k; }
  const json* find(const std::string& k) {
    seen_.insert(k);
    auto it = obj_.find(k);
    return it == obj_.end() ? nullptr : &*it;
  }
  void integer(const std::string& k, int64_t& out) {
    if (const json* v = find(k)) {
      require(v->is_number_integer(), file_ + ": '" + key_name(k) + "' must be an integer");
      out = v->get<int64_t>();
    }
  }
  void number(const std::string& k, double& out) {
    if (const json* v = find(k)) {
      require(v->is_number(), file_ + ": '" + key_name(k) + "' must be a number");
      out = v->get<double>();
    }
  }
  void boolean(const std::string& k, bool& out) {
    if (const json* v = find(k)) {
      require(v->is_boolean(), file_ + ": '" + key_name(k) + "' must be true or false");
      out = v->get<bool>();
    }
  }
  // The port runs only `supported` for this key (absent = the default, which is supported).
  void only(const std::string& k, const json& supported, const std::string& what) {
    if (const json* v = find(k))
      require(*v == supported, file_ + ": '" + key_name(k) + "' = " + v->dump() + " is not supported (" + what + ")");
  }
  void ignore(const std::string& k) { seen_.insert(k); }
  void no_unknown_keys() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      require(seen_.count(it.key()) > 0, file_ + ": unknown key '" + key_name(it.key()) + "' in an open_clip config");
  }

 private:
  const std::string& file_;
  std::string where_;
  const json& obj_;
  std::set<std::string> seen_;
};

void read_vision(const std::string& file, const json& j, OpenClipConfig& c) {
  Section s(file, "vision_cfg", j);
  if (const json* v = s.find("layers"))
    require(v->is_number_integer(), file + ": 'vision_cfg.layers' must be an integer (ResNet towers are not supported)");
  s.integer("layers", c.vision_layers);
  s.integer("width", c.vision_width);
  s.integer("head_width", c.vision_head_width);
  s.number("mlp_ratio", c.vision_mlp_ratio);
  s.integer("patch_size", c.patch_size);
  if (const json* v = s.find("image_size")) {
    if (v->is_array()) {
      require(v->size() == 2 && (*v)[0].is_number_integer() && (*v)[0] == (*v)[1],
              file + ": 'vision_cfg.image_size' must be an integer or a square [n, n]");
      c.image_size = (*v)[0].get<int64_t>();
    } else {
      s.integer("image_size", c.image_size);
    }
  }
  if (const json* v = s.find("ls_init_value")) c.vision_layer_scale = !v->is_null();
  s.ignore("patch_dropout");  // training only (identity in eval)
  s.only("attentional_pool", false, "attentional pooler");
  s.ignore("attn_pooler_queries");
  s.ignore("attn_pooler_heads");
  s.only("no_ln_pre", false, "ln_pre is always present");
  s.only("pos_embed_type", "learnable", "only learnable position embeddings");
  s.only("final_ln_after_pool", false, "ln_post before pooling only");
  if (const json* v = s.find("pool_type")) {
    require(v->is_string() && (*v == "tok" || *v == "avg"),
            file + ": 'vision_cfg.pool_type' = " + v->dump() + " is not supported (tok or avg)");
    c.avg_pool = *v == "avg";
  }
  s.ignore("output_tokens");
  s.only("act_kwargs", nullptr, "default activation arguments only");
  s.only("norm_kwargs", nullptr, "default LayerNorm arguments only");
  s.only("timm_model_name", nullptr, "timm vision towers are not ported");
  for (const char* k : {"timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"})
    s.ignore(k);
  s.no_unknown_keys();
}

void read_text(const std::string& file, const json& j, OpenClipConfig& c) {
  Section s(file, "text_cfg", j);
  s.integer("context_length", c.context_length);
  s.integer("vocab_size", c.vocab_size);
  s.only("hf_tokenizer_name", nullptr, "only the CLIP BPE tokenizer");
  s.only("tokenizer_kwargs", nullptr, "only the default CLIP BPE tokenizer");
  s.integer("width", c.text_width);
  s.integer("heads", c.text_heads);
  s.integer("layers", c.text_layers);
  s.number("mlp_ratio", c.text_mlp_ratio);
  if (const json* v = s.find("ls_init_value")) c.text_layer_scale = !v->is_null();
  s.only("embed_cls", false, "no CLS-embedding text towers (CoCa)");
  s.ignore("pad_id");  // only used with embed_cls
  s.only("no_causal_mask", false, "causal text attention only");
  s.only("final_ln_after_pool", false, "ln_final before pooling only");
  s.only("pool_type", "argmax", "argmax (EOT) pooling only");
  s.only("proj_bias", false, "text_projection without bias only");
  s.ignore("output_tokens");
  s.only("act_kwargs", nullptr, "default activation arguments only");
  s.only("norm_kwargs", nullptr, "default LayerNorm arguments only");
  s.only("hf_model_name", nullptr, "Hugging Face text towers are not ported");
  for (const char* k : {"hf_model_pretrained", "hf_proj_type", "hf_pooler_type"}) s.ignore(k);
  s.no_unknown_keys();
}

void read_preprocess(const std::string& file, const json& j, OpenClipConfig& c, int64_t* size) {
  Section s(file, "preprocess_cfg", j);
  auto triple = [&](const char* k, std::array<double, 3>& out) {
    if (const json* v = s.find(k)) {
      require(v->is_array() && v->size() == 3 && (*v)[0].is_number() && (*v)[1].is_number() && (*v)[2].is_number(),
              file + ": 'preprocess_cfg." + k + "' must be a list of 3 numbers");
      for (size_t i = 0; i < 3; ++i) out[i] = (*v)[i].get<double>();
    }
  };
  triple("mean", c.mean);
  triple("std", c.std);
  s.only("interpolation", "bicubic", "PIL bicubic resizing only");
  s.only("mode", "RGB", "RGB input only");
  if (const json* v = s.find("resize_mode")) {
    require(v->is_string() && (*v == "squash" || *v == "shortest"),
            file + ": 'preprocess_cfg.resize_mode' = " + v->dump() + " is not supported (squash or shortest)");
    c.resize_mode = *v == "squash" ? ResizeMode::Squash : ResizeMode::Shortest;
  }
  s.ignore("fill_color");  // only used by resize_mode 'longest'
  if (const json* v = s.find("size")) {
    require(v->is_number_integer() || (v->is_array() && v->size() == 2 && (*v)[0].is_number_integer() && (*v)[0] == (*v)[1]),
            file + ": 'preprocess_cfg.size' must be an integer or a square [n, n]");
    *size = v->is_array() ? (*v)[0].get<int64_t>() : v->get<int64_t>();
  }
  s.no_unknown_keys();
}

}  // namespace

OpenClipConfig load_config(const std::string& path) {
  json doc;
  try {
    doc = json::parse(read_file_bytes(path));
  } catch (const json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  require(doc.is_object(), path + ": expected a JSON object (an open_clip_config.json or its model_cfg)");
  const json* root = &doc;
  if (doc.contains("open_clip_config")) root = &doc["open_clip_config"];  // the parity fixture's config.json
  require(root->is_object(), path + ": 'open_clip_config' must be an object");
  const json* model = root->contains("model_cfg") ? &(*root)["model_cfg"] : root;
  require(model->contains("embed_dim") && model->contains("vision_cfg") && model->contains("text_cfg"),
          path + ": not an open_clip config (expected embed_dim, vision_cfg and text_cfg, bare or under model_cfg)");

  OpenClipConfig c;
  c.name = path;
  Section m(path, "", *model);
  m.integer("embed_dim", c.embed_dim);
  m.boolean("quick_gelu", c.quick_gelu);
  m.only("custom_text", false, "text keys at the top level (CLIP), not under text.");
  m.ignore("cast_dtype");        // precision comes from --precision
  m.ignore("init_logit_scale");  // logit_scale is not used for embeddings
  m.only("init_logit_bias", nullptr, "no logit_bias (SigLIP-style open_clip models)");
  read_vision(path, *m.find("vision_cfg"), c);
  read_text(path, *m.find("text_cfg"), c);
  if (root != model) {
    Section r(path, "", *root);
    r.find("model_cfg");
    int64_t size = c.image_size;
    if (const json* p = r.find("preprocess_cfg")) read_preprocess(path, *p, c, &size);
    require(size == c.image_size, path + ": preprocess_cfg.size " + std::to_string(size) +
                                      " differs from vision_cfg.image_size " + std::to_string(c.image_size));
    if (root == &doc) r.no_unknown_keys();  // the fixture's config.json carries other documentation keys
  }
  m.no_unknown_keys();
  c.validate();
  return c;
}

}  // namespace omnibind::experts::open_clip
