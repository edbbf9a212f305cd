// "Which expert family is this state dict?" from its keys (and a few shapes), without building a
// model: used by `omnibind convert --from` to refuse a file of the wrong expert in a slot before
// writing anything, and by `omnibind inspect` to name what a checkpoint is.
#pragma once
#include <string>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts {

struct CheckpointFamily {
  // The registered expert name ("wavcaps", "clap", "eva_clip", "open_clip", "siglip", "uni3d",
  // "imagebind"), "omnibind-heads" for OmniBind projector/router checkpoints, "" when unknown.
  std::string family;
  // The family's --size when the shapes say it ("fusion"/"base" for clap, "large16"/"so400m14" for
  // siglip); "" when the family has one size or the widths are custom.
  std::string size;
  // Noun phrase for messages: "a LAION-CLAP fusion", "a WavCaps HTSAT-BERT", "an EVA-CLIP" (+ " checkpoint").
  std::string phrase;
  // One line for `inspect` (the family's own describe_* text where it has one); "" when unknown.
  std::string description;
};

CheckpointFamily detect_checkpoint_family(const tensor_io::StateDict& sd);

// The noun phrase for an expected family/size, in the same words as CheckpointFamily::phrase.
std::string family_phrase(const std::string& family, const std::string& size = "");

// Modalities a registered family embeds (static knowledge, no model built); empty when unknown.
std::vector<std::string> family_modalities(const std::string& family);

}  // namespace omnibind::experts
