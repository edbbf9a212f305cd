// A synthetic world of controllable expert spaces (issue 3 item 6): the proof-on-data generator.
//
// Latent world: C class vectors in R^L (unit); an item of class c has instance latent
// z = normalize(class_c + spread * n). Texts additionally carry a source family f (0 audio, 1 image,
// 2 3D shape) that shifts their latent: z_text = normalize(z + family_bias * b_f).
// Experts: expert E embeds modality m as e = normalize(normalize(W_E z) + gap_{E,m} + sigma * n / sqrt(d_E)),
// W_E a random [d_E, L] map (the same for all of E's modalities: one aligned space), gap_{E,m} a fixed
// random vector of norm `modality_gap` per (expert, modality) (the modality gap), and sigma the expert's
// noise for the item's class (`good_noise` on the classes it is good at, `bad_noise` elsewhere); a text of
// a family the expert was not trained on gets `off_family_noise` added to sigma.
//
// Default experts (names follow a base-like binding: two audio-text experts, a 3D expert, a backbone):
//   AT_A  audio+text, dim 24, good on the first half of the classes, knows audio-family texts
//   AT_B  audio+text, dim 20, good on the second half, knows audio-family texts
//   U3D   point+image+text, dim 24, good everywhere, knows 3D-family texts
//   CLIP  image+text, dim 32, the backbone, good everywhere, knows image-family texts
// No expert covers audio and point together: audio<->3D retrieval can only come from binding.
// Training pools are unpaired (every item drawn independently, texts with `source`); the evaluation pool
// holds `eval_tuples` true tuples (one item per modality, `pair` = tuple id) plus class prompt ensembles.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/evaluation/eval_set.h"

namespace omnibind::evaluation {

struct SyntheticExpert {
  std::string name;
  std::vector<std::string> modalities;
  int64_t dim = 0;
  int64_t good_from = 0, good_to = -1;  // classes [good_from, good_to) are good; good_to < 0 = all classes
  int64_t family = -1;                 // text family it knows (0 audio, 1 image, 2 3D)
};

struct SyntheticWorldOptions {
  uint64_t seed = 1;
  int64_t latent_dim = 32;
  int64_t classes = 16;
  int64_t train_rows = 1500;   // per modality, unpaired
  int64_t eval_tuples = 300;   // true tuples in the evaluation pool
  int64_t prompts_per_class = 3;
  double spread = 0.6;
  double good_noise = 0.25, bad_noise = 1.2, off_family_noise = 0.8;
  double modality_gap = 0.6, family_bias = 0.5;
  std::vector<SyntheticExpert> experts;  // empty = the default four (see above)
  std::string backbone = "CLIP";
};

struct SyntheticWorld {
  SyntheticWorldOptions options;
  std::vector<std::string> classes;               // "class00", ...
  std::map<std::string, ModalityItems> train;     // unpaired pools (label, texts with source)
  EvalSet eval;                                   // true tuples (pair) + prompts
  // A binding config over the world's experts (backbone in output, `heads` heads per space).
  binding::BindingConfig binding_config(int64_t heads = 7, int64_t hidden = 64) const;
};

std::vector<SyntheticExpert> default_synthetic_experts(int64_t classes);
SyntheticWorld make_synthetic_world(const SyntheticWorldOptions& options = {});

// Writes the world as embedding pools (training::PoolWriter, atomic): `train_dir` unpaired,
// `eval_dir` with `pair` columns and prompts.safetensors.
void write_synthetic_pools(const SyntheticWorld& world, const std::filesystem::path& train_dir,
                           const std::filesystem::path& eval_dir);

}  // namespace omnibind::evaluation
