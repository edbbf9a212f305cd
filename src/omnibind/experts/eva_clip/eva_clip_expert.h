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

void register_eva_clip_expert();

}  // namespace omnibind::experts::eva_clip
