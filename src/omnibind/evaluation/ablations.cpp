#include "omnibind/evaluation/ablations.h"

#include <ATen/ATen.h>

#include "omnibind/evaluation/evaluate_binding.h"

namespace omnibind::evaluation {

binding::OmniBindModel train_model(const training::EmbeddingPool& pool, const training::TupleSet& tuples,
                                   const binding::BindingConfig& config, const training::TrainOptions& options) {
  return training::load_trained_model(training::train_binding(pool, tuples, config, options), config);
}

// "L_noise + L_align (< 3 slots) + L_dec": the router loss terms the options switch on.
std::string router_loss_label(const training::TrainOptions& o) {
  std::vector<std::string> terms;
  if (o.router_noise_weight > 0) terms.push_back("L_noise");
  if (o.router_align_weight > 0)
    terms.push_back(o.router_noise_weight > 0 && o.router_align_unidentified_only ? "L_align (routers < 3 slots)" : "L_align");
  if (o.decoupling) terms.push_back("L_dec");
  std::string out;
  for (const auto& t : terms) out += (out.empty() ? "" : " + ") + t;
  return out.empty() ? "no router loss" : out;
}

EvalTable run_ablations(const training::EmbeddingPool& pool, const EvalSet& eval, const binding::BindingConfig& config,
                        const AblationOptions& options) {
  eval.validate();
  EvalTable table;
  table.title = "Ablations (learned routing after training each variant)";
  table.tasks = eval_tasks(eval);
  auto say = [&](const std::string& s) {
    if (options.progress) options.progress(s);
  };
  say("mining retrieved tuples");
  training::TupleSet retrieved = training::mine_tuples(pool, options.mining);
  auto add = [&](const std::string& name, const training::TupleSet& tuples, const binding::BindingConfig& cfg,
                 const training::TrainOptions& train) {
    say("training: " + name);
    auto model = train_model(pool, tuples, cfg, train);
    table.rows.push_back(evaluate_model_row(eval, table.tasks, model, Routing::Learned, name, "ablation"));
    return model;
  };
  const std::string K = std::to_string(config.heads_per_space);
  auto full = add("full: " + K + " heads, " + router_loss_label(options.train) + ", retrieved tuples", retrieved, config, options.train);
  // What the routers buy: the same trained heads with equal weights over the slots.
  table.rows.push_back(evaluate_model_row(eval, table.tasks, full, Routing::Uniform, "full model, uniform routing", "ablation"));
  binding::BindingConfig one = config;
  one.heads_per_space = 1;
  add("1 head per space", retrieved, one, options.train);
  training::TrainOptions no_dec = options.train;
  no_dec.decoupling = false;
  add(router_loss_label(no_dec) + " (no L_dec)", retrieved, config, no_dec);
  // The other router objective (training/binding_trainer.h set_router_objective), heads and everything else alike.
  training::TrainOptions other = options.train;
  const bool paper = options.train.router_noise_weight == 0;
  training::set_router_objective(other, paper ? "denoise" : "paper");
  add(std::string(paper ? "denoise" : "paper") + " router objective (" + router_loss_label(other) + ")", retrieved, config, other);
  say("mining softmax-aggregated pseudo embeddings");
  training::MiningOptions agg = options.mining;
  agg.aggregate = true;
  agg.topk = options.aggregate_topk;
  agg.temperature = options.aggregate_temperature;
  add("softmax-aggregated pseudo embeddings (top-" + std::to_string(agg.topk) + ")", training::mine_tuples(pool, agg),
      config, options.train);
  if (options.train.decoupling && options.train.decoupling_margin < 1.0) {
    training::TrainOptions plain = options.train;
    plain.decoupling_margin = 1.0;
    add("L_dec as plain cross-entropy (no margin)", retrieved, config, plain);
  }
  table.notes.push_back("Every variant: same pools, seed and training options; only the named part changes.");
  return table;
}

}  // namespace omnibind::evaluation
