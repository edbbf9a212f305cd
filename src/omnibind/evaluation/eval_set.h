// An evaluation set in memory: per modality, every expert's embeddings of the same items plus their
// labels and true-tuple ids, and the class prompt ensembles. Loaded from an evaluation pool
// (training::EmbeddingPool, docs/POOLS.md) or built directly (synthetic worlds, tests). Evaluation sets
// are small (thousands to tens of thousands of items), so they are held in RAM as float32.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace omnibind::evaluation {

struct ModalityItems {
  std::map<std::string, at::Tensor> experts;  // expert name -> [N, d] float32
  at::Tensor label;   // int64 [N] (-1 unknown), or undefined
  at::Tensor labels;  // int64 [N, C] 0/1 multi-label, or undefined
  at::Tensor pair;    // int64 [N] true-tuple ids (-1 none), or undefined
  at::Tensor source;  // int64 [N] text family (0 audio, 1 image, 2 3D shape, -1 unknown), or undefined
  int64_t rows() const;
};

struct EvalSet {
  std::vector<std::string> classes;              // label i <-> classes[i]; may be empty (then num_classes)
  int64_t num_classes = 0;
  std::map<std::string, ModalityItems> modalities;  // "audio" | "image" | "point" | "text"
  std::map<std::string, at::Tensor> prompts;     // text expert -> [P, d] class prompt embeddings
  at::Tensor prompt_class;                        // int64 [P], or undefined (no zero-shot)

  // InputError when rows disagree within a modality, prompts disagree with prompt_class, or a
  // label is out of range. Called by the loaders and by evaluate_binding.
  void validate() const;
};

// Reads an evaluation pool directory (manifest.json, <modality>.safetensors, prompts.safetensors).
EvalSet load_eval_set(const std::filesystem::path& pool_dir);

}  // namespace omnibind::evaluation
