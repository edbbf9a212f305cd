// The "open_clip" expert (OmniBind key DFN_H14): images and texts into DFN5B-CLIP-ViT-H-14's space
// (or any open_clip CLIP with native towers, given --config). encode() = OmniBind's DFN_H14:
// encode_image / encode_text, divided by the norm (OmniBind's second F.normalize is the identity
// up to float rounding).
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"

namespace omnibind::experts::open_clip {

void register_open_clip_expert();

// Built directly (tests, benchmarks); the registry calls this too.
std::unique_ptr<Expert> make_open_clip_expert(const ExpertOptions& options);

}  // namespace omnibind::experts::open_clip
