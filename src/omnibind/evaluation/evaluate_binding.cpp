#include "omnibind/evaluation/evaluate_binding.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "omnibind/common/error.h"

namespace omnibind::evaluation {
namespace {

bool shares_pairs(const ModalityItems& a, const ModalityItems& b) {
  if (!a.pair.defined() || !b.pair.defined()) return false;
  at::Tensor pa = a.pair.masked_select(a.pair.ge(0));
  at::Tensor pb = b.pair.masked_select(b.pair.ge(0));
  if (pa.numel() == 0 || pb.numel() == 0) return false;
  return at::isin(pa, pb).any().item<bool>();
}

std::vector<std::string> set_modalities(const EvalSet& set) {
  std::vector<std::string> out;
  for (auto& m : binding::all_modalities())
    if (set.modalities.count(m)) out.push_back(m);
  return out;
}

}  // namespace

std::vector<EvalTask> eval_tasks(const EvalSet& set) {
  std::vector<EvalTask> tasks;
  const bool prompts = set.prompt_class.defined() && set.prompt_class.numel() > 0 && !set.prompts.empty();
  auto mods = set_modalities(set);
  for (auto& m : mods) {
    const ModalityItems& items = set.modalities.at(m);
    if (!prompts || m == "text") continue;  // texts are the class side of zero-shot
    if (items.labels.defined())
      tasks.push_back({EvalTask::Kind::MultiLabel, m, ""});
    else if (items.label.defined() && items.label.ge(0).any().item<bool>())
      tasks.push_back({EvalTask::Kind::ZeroShot, m, ""});
  }
  for (size_t i = 0; i < mods.size(); ++i)
    for (size_t j = i + 1; j < mods.size(); ++j)
      if (shares_pairs(set.modalities.at(mods[i]), set.modalities.at(mods[j]))) {
        tasks.push_back({EvalTask::Kind::Retrieval, mods[i], mods[j]});
        tasks.push_back({EvalTask::Kind::Retrieval, mods[j], mods[i]});
      }
  return tasks;
}

at::Tensor embed_unified(const binding::OmniBindModel& model, const std::string& modality,
                         const std::map<std::string, at::Tensor>& expert_rows, Routing routing, int64_t batch) {
  std::map<std::string, at::Tensor> inputs;
  int64_t rows = -1;
  for (auto& name : model.required_inputs(modality)) {
    auto it = expert_rows.find(name);
    require(it != expert_rows.end(), "the evaluation set has no '" + name + "' embeddings for " + modality +
                                         ", which the model's " + modality + " path needs");
    inputs[name] = it->second;
    rows = it->second.size(0);
  }
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < rows; b += std::max<int64_t>(batch, 1)) {
    const int64_t e = std::min(rows, b + std::max<int64_t>(batch, 1));
    std::map<std::string, at::Tensor> part;
    for (auto& [n, t] : inputs) part[n] = t.slice(0, b, e);
    if (routing == Routing::Learned) {
      out.push_back(model.embed(modality, part));
    } else {
      at::Tensor u = model.slot_embeddings(modality, part).mean(1);
      out.push_back(u / u.norm(2, -1, true).clamp_min(1e-12));
    }
  }
  return at::cat(out, 0);
}

EvalRow evaluate_row(const EvalSet& set, const std::vector<EvalTask>& tasks, const std::string& name,
                     const std::string& kind, const std::map<std::string, at::Tensor>& embeddings,
                     const at::Tensor& class_rows) {
  EvalRow row;
  row.name = name;
  row.kind = kind;
  for (auto& t : tasks) {
    auto q = embeddings.find(t.modality);
    if (q == embeddings.end()) continue;
    const ModalityItems& items = set.modalities.at(t.modality);
    if (t.kind == EvalTask::Kind::Retrieval) {
      auto g = embeddings.find(t.gallery);
      if (g == embeddings.end()) continue;
      row.retrieval[t.key()] = retrieval_recall(q->second, items.pair, g->second, set.modalities.at(t.gallery).pair);
    } else if (class_rows.defined() && class_rows.size(1) == q->second.size(1)) {
      if (t.kind == EvalTask::Kind::MultiLabel)
        row.map[t.key()] = mean_average_precision(at::matmul(q->second, class_rows.t()), items.labels);
      else
        row.zero_shot[t.key()] = zero_shot_accuracy(q->second, items.label, class_rows);
    }
  }
  return row;
}

EvalRow evaluate_model_row(const EvalSet& set, const std::vector<EvalTask>& tasks, const binding::OmniBindModel& model,
                           Routing routing, const std::string& name, const std::string& kind, int64_t batch) {
  auto model_mods = model.modalities();
  std::map<std::string, at::Tensor> emb;
  for (auto& [m, items] : set.modalities)
    if (std::find(model_mods.begin(), model_mods.end(), m) != model_mods.end())
      emb[m] = embed_unified(model, m, items.experts, routing, batch);
  at::Tensor classes;
  const bool has_text = std::find(model_mods.begin(), model_mods.end(), "text") != model_mods.end();
  if (has_text && set.prompt_class.defined() && set.prompt_class.numel() > 0) {
    at::Tensor p = embed_unified(model, "text", set.prompts, routing, batch);
    classes = class_embeddings(p, set.prompt_class, set.num_classes);
  }
  return evaluate_row(set, tasks, name, kind, emb, classes);
}

EvalTable evaluate_binding(const EvalSet& set, const binding::OmniBindModel& model, const EvalOptions& options) {
  set.validate();
  EvalTable table;
  table.title = "Binding evaluation";
  table.tasks = eval_tasks(set);
  require(!table.tasks.empty(), "the evaluation set supports no task (no labels with prompts, no shared pair ids)");
  if (options.single_experts) {
    // Every expert present in the set, in first-seen order over the modalities.
    std::vector<std::string> experts;
    for (auto& m : binding::all_modalities()) {
      auto it = set.modalities.find(m);
      if (it == set.modalities.end()) continue;
      for (auto& [n, _] : it->second.experts)
        if (std::find(experts.begin(), experts.end(), n) == experts.end()) experts.push_back(n);
    }
    for (auto& e : experts) {
      std::map<std::string, at::Tensor> emb;
      for (auto& [m, items] : set.modalities)
        if (items.experts.count(e)) emb[m] = items.experts.at(e);
      at::Tensor classes;
      if (set.prompts.count(e) && set.prompt_class.defined())
        classes = class_embeddings(set.prompts.at(e), set.prompt_class, set.num_classes);
      table.rows.push_back(evaluate_row(set, table.tasks, e + " (raw space)", "expert", emb, classes));
    }
  }
  if (options.uniform_routing)
    table.rows.push_back(evaluate_model_row(set, table.tasks, model, Routing::Uniform, "uniform routing", "uniform", options.batch));
  if (options.learned_routing)
    table.rows.push_back(evaluate_model_row(set, table.tasks, model, Routing::Learned, options.learned_name, "learned", options.batch));
  return table;
}

}  // namespace omnibind::evaluation
