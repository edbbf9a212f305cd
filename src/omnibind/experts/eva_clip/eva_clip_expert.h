// The "eva_clip" expert (OmniBind `EVA_E14p`): images and texts into EVA02-CLIP-bigE-14-plus's
// 1024-d image-text space, as OmniBind's experts.EVA_CLIP_E14p.emb_images / emb_texts (encode,
// x / ||x||, then F.normalize). Uni3D's image and text side is this same model.
//
// Images: ImageBind's vision preprocessing (shortest side 224 PIL bicubic, centre crop, OpenAI
// mean/std) -> [3, 224, 224]. Texts: CLIP BPE with open_clip's `<start_of_text>`/`<end_of_text>`
// spelling, context 77, truncation to SOT + 75 tokens + EOT -> int64 [77]; needs --bpe.
// Weights: the released EVA02_CLIP_E_psz14_plus_s9B.pt (16-bit) or any checkpoint of a --config;
// bf16 keeps bf16 weights as stored (zero-copy from the mapped file); fp32 keeps the 16-bit matmul
// weights mapped too and upcasts them per matmul (exact: bit-identical to converting up front).
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"

namespace omnibind::experts::eva_clip {

struct EvaClipModel;

// Built directly (tests, benchmarks); the registry calls this too.
std::unique_ptr<Expert> make_eva_clip_expert(const ExpertOptions& options);

// The "eva_clip_18b" expert (OmniBind `EVA_18B`, the Full preset's backbone): EVA-CLIP-18B by
// default (or a --config of the same structure), the same class as eva_clip with OmniBind's
// EVA_18B differences: texts truncated to 42 tokens (SOT + at most 40 + EOT, CLIPTokenizer
// max_length=42) then zero-padded to the model's 77 positions (same features: causal mask, first-EOT
// pooling); images cropped by --image-crop: "round" (default; the reference's torchvision
// CenterCrop, ToTensor) or "floor" (transformers CLIPImageProcessor, what OmniBind runs: crop at
// (d) // 2, float64 rescale). Weights: the released .fp16.pt or the Hugging Face shards
// (model.safetensors.index.json, or one shard of it: its siblings are found), all mapped read-only.
// docs/reference/eva_clip_18b.md.
std::unique_ptr<Expert> make_eva_clip_18b_expert(const ExpertOptions& options);

void register_eva_clip_expert();  // registers eva_clip and eva_clip_18b

}  // namespace omnibind::experts::eva_clip
