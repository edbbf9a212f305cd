// open_clip (v2.24.0) CLIP hyper-parameters: the model_cfg / preprocess_cfg of an
// open_clip_config.json, for the native ViT towers we run (no timm / HF towers).
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace omnibind::experts::open_clip {

enum class ResizeMode {
  Squash,    // Resize((S, S)): whole image to S x S, aspect not kept, no crop (DFN's hub config)
  Shortest,  // Resize(S) shortest side + CenterCrop(S) (open_clip's default)
};

struct OpenClipConfig {
  std::string name;                // "dfn5b-h14" or the config file's path
  int64_t embed_dim = 1024;
  bool quick_gelu = false;         // open_clip's default is nn.GELU; DFN's hub config sets true

  // vision_cfg (CLIPVisionCfg defaults where a JSON omits a key)
  int64_t image_size = 224, patch_size = 16;
  int64_t vision_width = 768, vision_layers = 12, vision_head_width = 64;
  double vision_mlp_ratio = 4.0;
  bool vision_layer_scale = false;  // ls_init_value set -> ls_1.gamma / ls_2.gamma
  bool avg_pool = false;            // pool_type 'avg' (mean of the patch tokens) instead of 'tok'

  // text_cfg (CLIPTextCfg defaults)
  int64_t context_length = 77, vocab_size = 49408;
  int64_t text_width = 512, text_heads = 8, text_layers = 12;
  double text_mlp_ratio = 4.0;
  bool text_layer_scale = false;

  // preprocess_cfg (open_clip defaults: OpenAI mean/std, bicubic, shortest)
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
  ResizeMode resize_mode = ResizeMode::Shortest;

  int64_t vision_heads() const { return vision_width / vision_head_width; }
  int64_t vision_mlp() const { return static_cast<int64_t>(static_cast<double>(vision_width) * vision_mlp_ratio); }
  int64_t text_mlp() const { return static_cast<int64_t>(static_cast<double>(text_width) * text_mlp_ratio); }
  int64_t grid() const { return image_size / patch_size; }
  int64_t vision_tokens() const { return grid() * grid() + 1; }
  void validate() const;  // InputError naming the bad field
};

// Built-in sizes: "dfn5b-h14" (aliases "DFN_H14", "h14"): apple/DFN5B-CLIP-ViT-H-14's
// open_clip_config.json. InputError listing the known names otherwise.
OpenClipConfig builtin_config(const std::string& size);

// A JSON config in any of these shapes: the parity fixture's config.json ({"open_clip_config":
// {"model_cfg", "preprocess_cfg"}}), a hub open_clip_config.json ({"model_cfg", "preprocess_cfg"}),
// or a bare model_cfg ({"embed_dim", "vision_cfg", "text_cfg", ...}). Missing keys take open_clip's
// dataclass defaults; keys that select something this port does not run (timm/HF towers,
// attentional pooling, ...) are InputErrors naming the file and key, as are unknown keys.
OpenClipConfig load_config(const std::string& path);

}  // namespace omnibind::experts::open_clip
