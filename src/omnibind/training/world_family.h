// A seeded family of synthetic binding worlds (issue 16 item 1): expert spaces of varied structure
// written as embedding pools, so routing and heads are tuned on some worlds and reported on others.
//
// Latent world (one per member): C unit class vectors in R^L; an item of class c has the instance latent
// z = unit(class_c + spread * n / sqrt(L)). Texts carry a source (0 sound, 1 look, 2 shape) that shifts
// them: z_text = unit(z + family_bias * f_source). Space s embeds modality m as
//   e = unit(unit(W_s z) + gap_{s,m} + sigma * noise_m * n / sqrt(d_s))
// with W_s a random [d_s, L] map shared by all of s's modalities (one aligned space), gap_{s,m} a fixed
// random vector of norm `gap` (the modality gap), sigma = class_noise[label] (the space's per-class
// reliability) plus, for texts, source_noise[source] (the space's per-source reliability: captions are
// read best by the family that produced them), and noise_m a per-modality scale.
//
// Training pools are unpaired (each modality draws its own items; pool sizes differ per modality);
// the evaluation pool holds true tuples (one item per modality sharing one instance latent, `pair` id)
// and class prompt ensembles. Members of the family (docs/reference/world_family.md):
//   tuning  k in [0, kTuningWorlds):  seed kTuningSeedBase + k   -- tune on these
//   heldout k in [0, kHeldOutWorlds): seed kHeldOutSeedBase + k  -- report only, never tune
// Member k's shape is "base-like" when k % 4 == 0 (the OmniBind-Base-like world of issue 16: 64-d
// image-text backbone, three audio-text spaces each reliable on a different third of 40 classes, an
// image-text space, a point-image-text space, an ImageBind-like audio-image-text space), else "random"
// (1-3 audio spaces, 0-2 image-text spaces, 1-2 point spaces, optional IB / audio-image space, dims 16-128,
// 8-64 classes, random reliabilities, gaps, noise, unequal pools, base- or every-expert routing).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"

namespace omnibind::training {

enum class WorldSplit { Tuning, HeldOut };

inline constexpr uint64_t kTuningSeedBase = 1000;
inline constexpr int64_t kTuningWorlds = 1000;
inline constexpr uint64_t kHeldOutSeedBase = 900000;
inline constexpr int64_t kHeldOutWorlds = 24;

std::string world_split_name(WorldSplit split);          // "tuning" | "heldout"
WorldSplit parse_world_split(const std::string& name);   // InputError naming the valid splits

struct WorldSpace {
  std::string name;                     // expert name in the pools and the binding config ("IB" = ImageBind-like)
  std::vector<std::string> modalities;  // in audio/image/point/text order
  int64_t dim = 0;                      // 16..128
  std::vector<double> class_noise;      // [C] sigma per class (low = reliable on that class)
  std::vector<double> source_noise;     // [3] extra sigma for texts of source sound / look / shape
  double gap = 0.6;                     // norm of the per-modality offset (modality gap)
};

struct WorldSpec {
  std::string split;     // "tuning" | "heldout" | "custom"
  int64_t index = 0;     // member index within the split
  uint64_t seed = 0;     // everything below and every row written follow from it
  std::string shape;     // "base-like" | "random"
  int64_t classes = 0, latent_dim = 0;
  double spread = 0.6, family_bias = 0.5;
  std::map<std::string, double> modality_noise;  // per-modality noise scale (audio/image/point/text)
  std::vector<WorldSpace> spaces;                // backbone included
  std::string backbone;
  std::map<std::string, int64_t> train_rows;     // per modality (unequal pools)
  int64_t eval_tuples = 0, prompts_per_class = 3;
  binding::BindingConfig config;                 // what `omnibind train --config` gets (config.json)

  const WorldSpace* find(const std::string& name) const;
};

// Member `index` of a split (InputError outside [0, kTuningWorlds) / [0, kHeldOutWorlds)).
WorldSpec world_spec(WorldSplit split, int64_t index);
// The two shapes directly (split "custom", index 0).
WorldSpec base_like_world_spec(uint64_t seed);
WorldSpec random_world_spec(uint64_t seed);
// Multiplies every pool size and the evaluation tuple count (>= 16 rows each); for quick runs.
void scale_world_rows(WorldSpec& spec, double factor);

std::string world_spec_to_json(const WorldSpec& spec);  // the description in world.json (pretty)

struct WorldFiles {
  std::filesystem::path train, eval, config, description;
};
// Writes DIR/train (unpaired pools), DIR/eval (true tuples with `pair`, prompts), DIR/config.json (binding
// config) and DIR/world.json (the spec); every row is a function of the spec alone (same spec = same bytes).
WorldFiles write_world(const WorldSpec& spec, const std::filesystem::path& dir);

}  // namespace omnibind::training
