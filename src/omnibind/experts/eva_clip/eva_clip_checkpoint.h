// EVA-CLIP checkpoint files: what the reference's load_checkpoint(model, path, strict=False)
// accepts, checked strictly. A state dict (bare, or under 'model' / 'module' / 'state_dict'),
// keys of CustomCLIP ("visual.*", "text.*", "logit_scale"), an optional "module." on every key,
// and the old open_clip layout with the text tower at the top level ("positional_embedding",
// "transformer.resblocks.*", ...; convert_to_custom_text_state_dict moves those under "text.").
// Unlike the reference, a file that misses any tensor of the config, or holds any tensor the
// model does not use, is refused with the names.
//
// Also the Hugging Face layout of the hub port (BAAI/EVA-CLIP-18B, EvaCLIPModel: "vision_model.*",
// "text_model.*", "visual_projection", "text_projection"), as one safetensors file or as shards:
// `path` may be the shard index (model.safetensors.index.json), the folder holding it, or any one
// shard next to it (model-00001-of-00008.safetensors). Every shard is mapped read-only and its
// tensors joined into one state dict without copying; a shard the index names that is missing,
// truncated or lacks a tensor the index puts in it is an InputError naming the shard.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts::eva_clip {

struct EvaClipCheckpoint {
  std::shared_ptr<const tensor_io::StateDict> dict;  // after unwrapping and "module." stripping (all shards)
  EvaKeyLayout layout = EvaKeyLayout::Official;
  std::string text_prefix = "text.";                 // "" for the old top-level text layout
  std::string logit_scale_key = "logit_scale";       // or "text.logit_scale" (the reference moves it)
};

// Opens `path` (safetensors, torch zip, legacy torch.save) and works out the layout. InputError
// naming the file when it is not an EVA-CLIP checkpoint (and which family it looks like: ImageBind,
// open_clip/OpenAI CLIP, Uni3D, SigLIP/HF, ...).
EvaClipCheckpoint open_checkpoint(const std::string& path);

// Every tensor name CustomCLIP has for `config` (state-dict order), with the text tower under
// `text_prefix` and logit_scale as `logit_scale_key`.
std::vector<std::string> expected_keys(const EvaClipConfig& config, const std::string& text_prefix = "text.",
                                       const std::string& logit_scale_key = "logit_scale",
                                       EvaKeyLayout layout = EvaKeyLayout::Official);

// One-line InputError when the file's structure is another EVA-CLIP model's than `config`'s
// (bigE's q_bias / LayerNorm bias against an EVA-CLIP-18B config, or the reverse), naming the file,
// what it is and what `expert` needs.
void require_config_matches(const EvaClipCheckpoint& ckpt, const EvaClipConfig& config, const std::string& expert);

// InputError "<file>: N tensor(s) missing for an EVA-CLIP checkpoint of <config>: 'a', 'b', ... and K
// more" when any expected key is absent. (Shapes are checked as the model loads; unexpected
// tensors by WeightSource::require_all_used afterwards.)
void require_complete(const EvaClipCheckpoint& ckpt, const EvaClipConfig& config);

// For `inspect`: when `sd` has EVA-CLIP's vision keys (visual.patch_embed.proj, visual.cls_token,
// fused-qkv blocks with q_bias), one line with what the shapes say ("EVA-CLIP checkpoint (expert
// eva_clip, key EVA_E14p): vision width 1792, 64 blocks, patch 14; text width 1280, 32 blocks;
// embed 1024"); std::nullopt otherwise. A "module." prefix is allowed.
std::optional<std::string> describe_checkpoint(const tensor_io::StateDict& sd);

}  // namespace omnibind::experts::eva_clip
