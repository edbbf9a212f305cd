#include "omnibind/evaluation/ablations.h"

#include <ATen/ATen.h>

#include "omnibind/evaluation/evaluate_binding.h"

namespace omnibind::evaluation {

binding::OmniBindModel train_model(const training::EmbeddingPool& pool, const training::TupleSet& tuples,
                                   const binding::BindingConfig& config, const training::TrainOptions& options) {
  return training::load_trained_model(training::train_binding(pool, tuples, config, options), config);
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
  auto full = add("full: " + K + " heads, L_align + L_dec, retrieved tuples", retrieved, config, options.train);
  // What the routers buy: the same trained heads with equal weights over the slots.
  table.rows.push_back(evaluate_model_row(eval, table.tasks, full, Routing::Uniform, "full model, uniform routing", "ablation"));
  binding::BindingConfig one = config;
  one.heads_per_space = 1;
  add("1 head per space", retrieved, one, options.train);
  training::TrainOptions no_dec = options.train;
  no_dec.decoupling = false;
  add("L_align only (no L_dec)", retrieved, config, no_dec);
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
