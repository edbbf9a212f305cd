// The "siglip" expert: images and texts into a SigLIP space, as OmniBind's SigLip384 wrapper runs
// transformers 4.37.2 (google/siglip-large-patch16-384 = key SigLip_384, --size large16;
// google/siglip-so400m-patch14-384 = key SigLip_400M_384, --size so400m14).
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts {

void register_siglip_expert();

// Built directly (tests, benchmarks); the registry calls this too. Options: weights =
// model.safetensors (required); size = large16 | so400m14, or config = a config.json (without
// either, the size is read off the checkpoint's shapes); vocab_files = the spiece.model (text;
// bpe_vocab is taken when vocab_files is empty: the one tokenizer path bundles and serve carry);
// precision fp32 | bf16.
std::unique_ptr<Expert> make_siglip_expert(const ExpertOptions& options);

// For `inspect`: "SigLIP checkpoint (expert siglip, --size large16, key SigLip_384)" and the like
// when `sd` has SigLIP's keys (vision_model.head.probe, text_model.head.weight), else "".
std::string describe_siglip_checkpoint(const tensor_io::StateDict& sd);

}  // namespace omnibind::experts
