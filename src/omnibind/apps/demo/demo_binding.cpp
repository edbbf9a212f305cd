#include "omnibind/apps/demo/demo_binding.h"

#include "omnibind/binding/every_expert_config.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::apps {

binding::BindingConfig demo_binding_config(const std::vector<DemoSpace>& spaces, const DemoScale& scale) {
  std::vector<binding::ExpertSpec> experts;
  for (const auto& s : spaces) experts.push_back({s.expert.key, s.expert.modalities, s.expert.config.dim, {}});
  return binding::every_expert_config("demo", std::move(experts), spaces.front().expert.key, scale.heads,
                                      scale.projector_hidden, {64, 32});
}

DemoBinding bind_demo_spaces(const std::filesystem::path& train_pool, const std::filesystem::path& heads_path,
                             const binding::BindingConfig& config, const DemoScale& scale, uint64_t seed, int threads,
                             const std::function<void(const std::string&, double)>& progress) {
  auto pool = training::EmbeddingPool::open(train_pool);
  training::check_pool_against_config(pool, config);
  DemoBinding out;
  out.config = config;
  training::MiningOptions mining;
  mining.seed = seed;
  auto tuples = training::mine_tuples(pool, mining, &out.mining_stats, [&](const std::string& stage, double f) {
    if (progress) progress("mining " + stage, f);
  });
  out.tuples = tuples.size();
  training::TrainOptions train;
  train.seed = seed;
  train.threads = threads;  // 0 would mean all cores, not the demo's setting
  train.projector_epochs = scale.projector_epochs;
  train.router_epochs = scale.router_epochs;
  train.batch = 128;
  train.progress = [&](const training::TrainProgress& p) {
    if (progress) progress(p.stage, p.fraction);
  };
  auto state = training::train_binding(pool, tuples, config, train);
  training::write_binding_checkpoint(heads_path, state, config);
  out.model = std::make_shared<binding::OmniBindModel>(training::load_trained_model(state, config));
  return out;
}

evaluation::EvalTable evaluate_demo(const evaluation::EvalSet& eval, const binding::OmniBindModel& model) {
  auto table = evaluation::evaluate_binding(eval, model);
  table.title = "Demo world: held-out true tuples";
  return table;
}

}  // namespace omnibind::apps
