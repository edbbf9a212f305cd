// evaluate_binding: the whole evaluation of a bound model on an evaluation set, as one table (eval_table.h).
// Rows: every expert of the set in its own raw space (for the modalities and pairs it covers), uniform
// routing (equal weights over the model's slots: mean of slot_embeddings, renormalised) and learned routing
// (OmniBindModel::embed). Tasks: zero-shot per labelled modality from the class prompt ensembles, and
// retrieval in both directions for every modality pair whose items share `pair` ids.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/eval_table.h"

namespace omnibind::evaluation {

struct EvalOptions {
  bool single_experts = true;
  bool uniform_routing = true;
  bool learned_routing = true;
  std::string learned_name = "learned routing";  // row name (ablations rename it)
  int64_t batch = 4096;                           // rows per model call
};

// The tasks a set supports (zero-shot where labels and prompts exist; pairs with shared ids), in a stable order.
std::vector<EvalTask> eval_tasks(const EvalSet& set);

// Unified embeddings of one modality's items (or of the prompts for "prompts"), learned or uniform routing.
enum class Routing { Learned, Uniform };
at::Tensor embed_unified(const binding::OmniBindModel& model, const std::string& modality,
                         const std::map<std::string, at::Tensor>& expert_rows, Routing routing, int64_t batch = 4096);

// One row for a representation given per-modality embeddings (+ class embeddings for zero-shot).
EvalRow evaluate_row(const EvalSet& set, const std::vector<EvalTask>& tasks, const std::string& name,
                     const std::string& kind, const std::map<std::string, at::Tensor>& embeddings,
                     const at::Tensor& class_rows);

// The model's row (learned or uniform) on the set.
EvalRow evaluate_model_row(const EvalSet& set, const std::vector<EvalTask>& tasks, const binding::OmniBindModel& model,
                           Routing routing, const std::string& name, const std::string& kind, int64_t batch = 4096);

EvalTable evaluate_binding(const EvalSet& set, const binding::OmniBindModel& model, const EvalOptions& options = {});

}  // namespace omnibind::evaluation
