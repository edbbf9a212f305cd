// The "precomputed" expert: serves embeddings stored in a pool file instead of running a model,
// so training and evaluation run the same code whether the experts ran here or elsewhere.
//
// Pool file = what `omnibind embed --out` writes: a safetensors file with one tensor
// `<KEY>` [N, d] (float32/16, unit rows; e.g. "IB") and __metadata__
//   {"modality": "image", "expert": "imagebind", "key": "IB", "dim": "1024",
//    "paths": "[\"a.jpg\", ...]"}   (a JSON list, row i <-> paths[i]; texts for --text inputs)
// When the metadata has no "paths", a `paths.json` (JSON list) beside the file is used.
// preprocess(path) -> the row index as an int64 [1] tensor; encode([B, 1]) -> the rows [B, d].
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"

namespace omnibind::experts {

void register_precomputed_expert();

// options.weights = the pool file; options.size picks the tensor when the file holds several.
std::unique_ptr<Expert> make_precomputed_expert(const ExpertOptions& options);

}  // namespace omnibind::experts
