// Binding the demo's expert spaces with the project's own pipeline: the binding config (every space
// projected into the backbone, routers reading every expert of their modality), pseudo tuples mined
// from the unpaired training pool, projector heads and routers trained, the evaluation table.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "omnibind/apps/demo/demo_pools.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/binding/binding_config.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/eval_table.h"

namespace omnibind::apps {

binding::BindingConfig demo_binding_config(const std::vector<DemoSpace>& spaces, const DemoScale& scale);

struct DemoBinding {
  binding::BindingConfig config;
  std::shared_ptr<binding::OmniBindModel> model;
  nlohmann::json mining_stats;  // tuple purity, recall@10 of the hops, ...
  int64_t tuples = 0;
};

// Mines tuples from `train_pool`, trains heads and routers, writes the official-layout checkpoint to
// `heads_path` (with its binding config in the metadata) and returns the model.
DemoBinding bind_demo_spaces(const std::filesystem::path& train_pool, const std::filesystem::path& heads_path,
                             const binding::BindingConfig& config, const DemoScale& scale, uint64_t seed, int threads,
                             const std::function<void(const std::string&, double)>& progress);

// Single experts, uniform routing and learned routing on the held-out evaluation set.
evaluation::EvalTable evaluate_demo(const evaluation::EvalSet& eval, const binding::OmniBindModel& model);

}  // namespace omnibind::apps
