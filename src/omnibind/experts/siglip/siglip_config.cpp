#include "omnibind/experts/siglip/siglip_config.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::siglip {

namespace {

std::string key_for_patch(int64_t patch) {
  return patch == 16 ? "SigLip_384" : patch == 14 ? "SigLip_400M_384" : "SIGLIP";
}

}  // namespace

void SiglipConfig::validate() const {
  auto tower = [&](const TowerConfig& t, const char* what) {
    require(t.hidden > 0 && t.layers > 0 && t.heads > 0 && t.mlp > 0 && t.hidden % t.heads == 0 && t.eps > 0,
            name + ": " + what + " needs positive hidden_size/num_hidden_layers/num_attention_heads/intermediate_size " +
                "with hidden_size divisible by num_attention_heads (got " + std::to_string(t.hidden) + "/" +
                std::to_string(t.layers) + "/" + std::to_string(t.heads) + "/" + std::to_string(t.mlp) + ")");
  };
  tower(vision, "vision_config");
  tower(text, "text_config");
  require(vision.hidden == text.hidden, name + ": vision_config.hidden_size " + std::to_string(vision.hidden) +
                                            " != text_config.hidden_size " + std::to_string(text.hidden) +
                                            " (image and text embeddings must share one space)");
  require(channels == 3, name + ": vision_config.num_channels must be 3 (RGB images)");
  require(patch > 0 && image_size >= patch, name + ": vision_config.patch_size must be in 1..image_size");
  require(vocab_size > 2 && max_positions > 0, name + ": text_config.vocab_size / max_position_embeddings must be positive");
  require(context > 0 && context <= max_positions,
          name + ": tokenizer model_max_length " + std::to_string(context) + " does not fit the " +
              std::to_string(max_positions) + " text positions (max_position_embeddings)");
}

SiglipConfig builtin_config(const std::string& size) {
  SiglipConfig c;
  c.image_size = 384;
  if (size == "large16") {  // google/siglip-large-patch16-384
    c.vision = {1024, 24, 16, 4096};
    c.patch = 16;
  } else if (size == "so400m14") {  // google/siglip-so400m-patch14-384
    c.vision = {1152, 27, 16, 4304};
    c.patch = 14;
  } else {
    throw InputError("unknown SigLIP size '" + size + "' (known: large16, so400m14; or give --config config.json)");
  }
  c.text = c.vision;
  c.name = size;
  c.key = key_for_patch(c.patch);
  return c;
}

SiglipConfig load_config(const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  require(doc.is_object(), path + ": expected a SigLIP config.json object (text_config, vision_config)");
  require(doc.contains("vision_config") || doc.contains("text_config"),
          path + ": no 'vision_config' / 'text_config' (not a SigLIP config.json?)");
  if (doc.contains("model_type") && doc["model_type"].is_string())
    require(doc["model_type"] == "siglip", path + ": model_type is '" + doc["model_type"].get<std::string>() +
                                               "', expected 'siglip'");
  SiglipConfig c;
  c.name = path;

  auto section = [&](const char* name) -> nlohmann::json {
    if (!doc.contains(name)) return nlohmann::json::object();
    require(doc[name].is_object(), path + ": '" + name + "' must be an object");
    return doc[name];
  };
  auto get_int = [&](const nlohmann::json& j, const char* sec, const char* key, int64_t& out) {
    if (!j.contains(key)) return;
    require(j[key].is_number_integer(), path + ": '" + sec + "." + key + "' must be an integer");
    out = j[key].get<int64_t>();
  };
  auto tower = [&](const nlohmann::json& j, const char* sec, TowerConfig& t) {
    get_int(j, sec, "hidden_size", t.hidden);
    get_int(j, sec, "num_hidden_layers", t.layers);
    get_int(j, sec, "num_attention_heads", t.heads);
    get_int(j, sec, "intermediate_size", t.mlp);
    if (j.contains("layer_norm_eps")) {
      require(j["layer_norm_eps"].is_number(), path + ": '" + sec + ".layer_norm_eps' must be a number");
      t.eps = j["layer_norm_eps"].get<double>();
    }
    if (j.contains("hidden_act")) {
      require(j["hidden_act"].is_string(), path + ": '" + sec + ".hidden_act' must be a string");
      try {
        t.act = vit::parse_activation(j["hidden_act"].get<std::string>());
      } catch (const InputError& e) {
        throw InputError(path + ": '" + sec + ".hidden_act': " + e.what());
      }
    }
  };
  const auto v = section("vision_config"), t = section("text_config");
  tower(v, "vision_config", c.vision);
  tower(t, "text_config", c.text);
  get_int(v, "vision_config", "num_channels", c.channels);
  get_int(v, "vision_config", "image_size", c.image_size);
  get_int(v, "vision_config", "patch_size", c.patch);
  get_int(t, "text_config", "vocab_size", c.vocab_size);
  get_int(t, "text_config", "max_position_embeddings", c.max_positions);

  // The fixture's config.json carries the processor's settings too: accept only what we implement.
  if (doc.contains("preprocessor_config")) {
    const auto& p = doc["preprocessor_config"];
    require(p.is_object(), path + ": 'preprocessor_config' must be an object");
    auto unsupported = [&](const std::string& what) {
      throw InputError(path + ": preprocessor_config." + what + " is not SigLIP's (squash to image_size, bicubic, "
                       "1/255, mean = std = 0.5)");
    };
    if (p.contains("size")) {
      const auto& s = p["size"];
      if (!s.is_object() || !s.contains("height") || !s.contains("width") || s["height"] != c.image_size ||
          s["width"] != c.image_size)
        unsupported("size");
    }
    if (p.contains("resample") && p["resample"] != 3) unsupported("resample");
    for (const char* k : {"image_mean", "image_std"})
      if (p.contains(k)) {
        const auto& a = p[k];
        if (!a.is_array() || a.size() != 3) unsupported(k);
        for (const auto& x : a)
          if (!x.is_number() || std::abs(x.get<double>() - 0.5) > 1e-12) unsupported(k);
      }
    if (p.contains("rescale_factor") &&
        (!p["rescale_factor"].is_number() || std::abs(p["rescale_factor"].get<double>() - 1.0 / 255.0) > 1e-15))
      unsupported("rescale_factor");
    for (const char* k : {"do_resize", "do_rescale", "do_normalize"})
      if (p.contains(k) && p[k] != true) unsupported(k);
  }
  if (doc.contains("tokenizer_config")) {
    const auto& tc = doc["tokenizer_config"];
    require(tc.is_object(), path + ": 'tokenizer_config' must be an object");
    get_int(tc, "tokenizer_config", "model_max_length", c.context);
    // What we implement is the released tokenizer: lower-casing on, no attention_mask returned (so the
    // text tower attends to the padding). Anything else is refused rather than silently differing.
    if (tc.contains("do_lower_case") && tc["do_lower_case"] != true)
      throw InputError(path + ": tokenizer_config.do_lower_case is not true (only SigLIP's released tokenizer, "
                       "which lower-cases, is implemented)");
    for (const auto& [k, want] : {std::pair<const char*, const char*>{"eos_token", "</s>"}, {"pad_token", "</s>"},
                                   {"unk_token", "<unk>"}})
      if (tc.contains(k) && tc[k].is_string())
        require(tc[k] == want, path + ": tokenizer_config." + k + " is " + tc[k].dump() + ", SigLIP's is \"" + want + "\"");
    if (tc.contains("additional_special_tokens"))
      require(tc["additional_special_tokens"].is_array() && tc["additional_special_tokens"].empty(),
              path + ": tokenizer_config.additional_special_tokens must be empty (as released)");
    if (tc.contains("model_input_names")) {
      const auto& names = tc["model_input_names"];
      require(names.is_array(), path + ": 'tokenizer_config.model_input_names' must be a list");
      for (const auto& n : names)
        require(n == "input_ids", path + ": tokenizer_config.model_input_names lists " + n.dump() +
                                      " (only ['input_ids'] is implemented: the released processors return no "
                                      "attention_mask and the text tower attends to the padding)");
    }
  }
  c.key = key_for_patch(c.patch);
  c.validate();
  return c;
}

}  // namespace omnibind::experts::siglip
