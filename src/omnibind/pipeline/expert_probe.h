// What a bundle can learn about an expert without building it: its width and the modalities it
// embeds, from its config, size name or file header (cheap: no weights are read). ModelBundle::load
// checks entries against this up front and builds an expert only when a modality first needs it.
//   auto t = probe_expert("uni3d", options);   // t.dim == 1024, t.modalities == {Point}
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/experts/expert.h"

namespace omnibind::pipeline {

struct ExpertTraits {
  int64_t dim = 0;                             // 0 = not known without building the expert
  std::vector<experts::Modality> modalities;   // empty = not known without building the expert
};

// A family's probe; may throw (the caller then treats the traits as unknown: the real error comes,
// as one line, when the expert is built).
using ExpertProbe = std::function<ExpertTraits(const experts::ExpertOptions&)>;

// Registers (or replaces) the probe of `family`. Built-in families have one already (widths: eva_clip,
// uni3d, precomputed, zoo; modalities: all but those whose files decide, which the probe reads).
void register_expert_probe(const std::string& family, ExpertProbe probe);

// The family's traits for these options; {} for a family without a probe or a probe that fails.
ExpertTraits probe_expert(const std::string& family, const experts::ExpertOptions& options);

}  // namespace omnibind::pipeline
