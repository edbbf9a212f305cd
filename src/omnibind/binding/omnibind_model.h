// The unified embedding: per modality m with slots k (expert spaces, then the IB slot):
//   slot_k = mean of space k's heads applied to e_k        (no re-normalisation)
//   IB slot = normalize(mean IB heads(e_IB))               image, text (Base/Large)
//           = mean IB heads(e_IB)                          audio (the reference does not re-normalise)
//           = normalize(0.1 * mean IB heads + 0.9 * e_bb)   image, text when backbone_in_output (Full)
//   w = softmax(sigmoid(router_m(concat predictor embeddings)) * (10 for text, else 1))
//   unified_m = normalize(sum_k w_k * slot_k)
// Widths come from the checkpoint's tensor shapes, so any width works.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <optional>
#include <string>
#include <vector>
#include <utility>

#include "omnibind/binding/binding_config.h"
#include "omnibind/binding/projector_ensemble.h"
#include "omnibind/binding/router.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::binding {

enum class Precision { FP32, BF16 };
Precision parse_precision(const std::string& name);  // "fp32" | "bf16"

// Router key prefix of a modality: audio -> "A_enc_router.router.", image -> "V_...", point -> "P_...", text -> "T_...".
std::string router_prefix(const std::string& modality);

class OmniBindModel {
 public:
  // Builds the model from an official-layout state dict; InputError when the checkpoint does not
  // fit the config (naming the key, the shapes, and the preset the checkpoint looks like).
  static OmniBindModel load(const tensor_io::StateDict& sd, BindingConfig config, Precision precision = Precision::FP32);
  // The pre-folded layout model bundles store (docs/BUNDLE.md): the buffers this model computes with,
  // by name ("space.<EXPERT>.{w1,b1,w2,b2}", "router.<modality>.{l0,l1,l2}.{weight,bias}"), float32,
  // and the loader that maps them back without copying or folding (folded_model.cpp).
  std::vector<std::pair<std::string, at::Tensor>> folded_tensors() const;
  static OmniBindModel load_folded(const tensor_io::StateDict& sd, BindingConfig config, Precision precision = Precision::FP32);

  const BindingConfig& config() const { return config_; }
  int64_t unified_dim() const { return unified_dim_; }
  int64_t hidden_dim() const { return hidden_dim_; }
  int64_t heads_per_space() const { return config_.heads_per_space; }
  Precision precision() const { return precision_; }
  // Width the model expects for an expert's embeddings.
  int64_t input_dim(const std::string& expert) const;
  // Modalities the checkpoint has a router for.
  std::vector<std::string> modalities() const;
  // "<EXPERT>" names a modality needs, in a stable order.
  std::vector<std::string> required_inputs(const std::string& modality) const;

  // inputs: expert name -> [B, d] float embeddings of one modality. Validates names, widths, rows, finiteness.
  at::Tensor embed(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;  // [B, D]
  // The softmax routing weights [B, S] and the slot embeddings [B, S, D] (for reports and training).
  at::Tensor routing_weights(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;
  at::Tensor slot_embeddings(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;

 private:
  void check_inputs(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;
  // The same computations on inputs already checked (embed validates once, not per part).
  at::Tensor slots_unchecked(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;
  at::Tensor weights_unchecked(const std::string& modality, const std::map<std::string, at::Tensor>& inputs) const;

  BindingConfig config_;
  Precision precision_ = Precision::FP32;
  int64_t unified_dim_ = 0, hidden_dim_ = 0;
  std::map<std::string, ProjectorEnsemble> spaces_;  // expert name -> heads (IB included)
  std::map<std::string, Router> routers_;            // modality -> router
  std::map<std::string, int64_t> input_dims_;
};

// What a state dict holds, for `omnibind inspect` and error messages.
struct CheckpointSummary {
  int64_t projector_heads = 0;     // count of projs.N
  int64_t ib_heads = 0;            // count of ib_projs.N
  int64_t hidden = 0, unified = 0;
  std::map<std::string, int64_t> router_outputs;  // modality -> S
  std::map<std::string, int64_t> router_inputs;   // modality -> input width
  std::vector<int64_t> router_hidden;
  std::vector<int64_t> space_input_dims;  // per projected space (heads grouped by heads_per_space)
  int64_t parameters = 0;
  std::map<std::string, int64_t> dtype_counts;  // "F32" -> tensors
  std::string preset;                            // "base" | "large" | "full" | "" (custom/unknown)
};
CheckpointSummary summarize_checkpoint(const tensor_io::StateDict& sd);

}  // namespace omnibind::binding
