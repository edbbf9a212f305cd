// SigLIP hyper-parameters (transformers SiglipConfig: text_config + vision_config) and OmniBind's two
// released sizes. Both towers share the output width (image_embeds and text_embeds live in one space).
#pragma once
#include <cstdint>
#include <string>

#include "omnibind/experts/vit/vit_layers.h"

namespace omnibind::experts::siglip {

struct TowerConfig {
  int64_t hidden = 768;         // hidden_size
  int64_t layers = 12;          // num_hidden_layers
  int64_t heads = 12;           // num_attention_heads
  int64_t mlp = 3072;           // intermediate_size
  double eps = 1e-6;            // layer_norm_eps
  vit::Activation act = vit::Activation::GeluTanh;  // hidden_act gelu_pytorch_tanh
};

struct SiglipConfig {
  std::string name;            // "large16", "so400m14" or the config file's path
  std::string key;             // OmniBind's space name: "SigLip_384", "SigLip_400M_384" (or "SIGLIP")
  TowerConfig vision, text;
  int64_t channels = 3, image_size = 224, patch = 16;  // SiglipVisionConfig defaults
  int64_t vocab_size = 32000, max_positions = 64;      // SiglipTextConfig defaults
  // The tokenizer's model_max_length: every text is padded to this many ids and the text tower pools
  // its last position. Released tokenizer_config.json: 64 (a config file's "tokenizer_config" may
  // say otherwise; it must fit max_positions, else the reference fails on every text).
  int64_t context = 64;

  int64_t grid() const { return image_size / patch; }             // 24 (L/16-384), 27 (so400m/14-384)
  int64_t vision_tokens() const { return grid() * grid(); }       // 576, 729
  int64_t dim() const { return vision.hidden; }                   // == text.hidden
  void validate() const;  // InputError naming the bad field
};

// Built-in sizes: "large16" (google/siglip-large-patch16-384, key SigLip_384) and "so400m14"
// (google/siglip-so400m-patch14-384, key SigLip_400M_384). InputError listing them otherwise.
SiglipConfig builtin_config(const std::string& size);

// A JSON config in Hugging Face's config.json layout ({"text_config": {...}, "vision_config": {...}},
// the fixture's config.json; missing fields take transformers' defaults). An optional
// "preprocessor_config" must describe the processing we implement (squash to image_size, bicubic,
// 1/255, mean = std = 0.5); an optional "tokenizer_config.model_max_length" sets `context`. key by patch size, as the two released models differ: 16 -> SigLip_384,
// 14 -> SigLip_400M_384, else "SIGLIP" (the expert lets --size override it). InputError naming file
// and field.
SiglipConfig load_config(const std::string& path);

}  // namespace omnibind::experts::siglip
