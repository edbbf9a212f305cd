// omnibind eval: a trained binding on an evaluation pool -> one table (single experts in their raw spaces,
// uniform routing, learned routing; zero-shot per modality and retrieval both ways per paired modality pair),
// printed as Markdown and optionally written as JSON/Markdown (atomic).
#include <cstdio>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::cli {
namespace {

struct EvalCliOptions {
  std::string pools, head, config, preset, json, markdown, precision = "fp32";
  int64_t batch = 4096;
  bool no_experts = false;
};

int run_eval(const EvalCliOptions& o) {
  require(o.preset.empty() || o.config.empty(), "give at most one of --config and --preset");
  // Neither: the config `train` stored in the head's metadata.
  auto config = !o.preset.empty()  ? binding::preset_config(o.preset)
                : !o.config.empty() ? binding::load_binding_config(o.config)
                                    : binding::binding_config_of_checkpoint(o.head);
  std::fprintf(stderr, "eval: loading %s\n", o.pools.c_str());
  auto set = evaluation::load_eval_set(o.pools);
  auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint(o.head), config, binding::parse_precision(o.precision));
  evaluation::EvalOptions options;
  options.single_experts = !o.no_experts;
  options.batch = o.batch;
  std::fprintf(stderr, "eval: evaluating %zu modalities\n", set.modalities.size());
  auto table = evaluation::evaluate_binding(set, model, options);
  table.title = "omnibind eval: " + o.pools;
  evaluation::write_eval_table(table, o.json, o.markdown);
  std::printf("%s", table.to_markdown().c_str());
  return 0;
}

VerbRun setup_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCliOptions>();
  app.add_option("--pools", o->pools, "Evaluation pool directory (manifest.json, <modality>.safetensors with pair/label, prompts.safetensors)")
      ->required();
  app.add_option("--head", o->head, "Trained projector/router checkpoint (.safetensors, .pt, .pth)")->required();
  app.add_option("--config", o->config, "Binding config JSON the checkpoint was trained with (default: the one in the head's metadata)");
  app.add_option("--preset", o->preset, "Official layout (base, large, full) instead of --config");
  app.add_option("--json", o->json, "Write the table as JSON here (atomic)");
  app.add_option("--markdown", o->markdown, "Write the table as Markdown here (atomic)");
  app.add_option("--precision", o->precision, "fp32 or bf16")->capture_default_str();
  app.add_option("--batch", o->batch, "Rows per model call")->capture_default_str();
  app.add_flag("--no-experts", o->no_experts, "Leave out the single-expert rows");
  return [o] { return run_eval(*o); };
}

REGISTER_VERB("eval", "Evaluate a binding: zero-shot and cross-modal retrieval, experts vs uniform vs learned routing", setup_eval);

}  // namespace
}  // namespace omnibind::cli
