// omnibind ablate: what each part of the binding method buys (evaluation/ablations.h). Trains the full method
// and each ablation on one training pool, evaluates every variant with learned routing on one evaluation pool
// (plus the full model with uniform routing), and prints one table (Markdown; optionally Markdown/JSON files,
// written atomically only when every variant finished).
#include <cstdio>
#include <filesystem>

#include "omnibind/binding/binding_config.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/ablations.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/training/binding_trainer.h"

namespace omnibind::cli {
namespace {
namespace fs = std::filesystem;

struct AblateCliOptions {
  std::string pool, eval, config, preset, out, json;
  evaluation::AblationOptions ablation;
  bool quiet = false;
};

void check_output(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  if (!fs::is_directory(fs::absolute(path).parent_path()))
    throw InputError(flag + " " + path + ": the directory does not exist");
}

int run_ablate(AblateCliOptions& o) {
  require(o.preset.empty() != o.config.empty(), "give exactly one of --config and --preset");
  require(o.ablation.train.threads >= 0, "--threads must be 0 (all cores) or a positive count");
  require(o.ablation.train.projector_epochs >= 1 && o.ablation.train.router_epochs >= 1,
          "--epochs-proj and --epochs-router must be at least 1");
  require(o.ablation.aggregate_topk >= 2, "--topk (the aggregated variant's k) must be at least 2");
  check_output(o.out, "--out");
  check_output(o.json, "--json");
  auto config = o.preset.empty() ? binding::load_binding_config(o.config) : binding::preset_config(o.preset);
  auto pool = training::EmbeddingPool::open(o.pool);
  training::check_pool_against_config(pool, config);
  auto eval = evaluation::load_eval_set(o.eval);
  o.ablation.mining.seed = o.ablation.train.seed;
  if (!o.quiet) {
    o.ablation.progress = [](const std::string& s) { std::fprintf(stderr, "\nablate: %s\n", s.c_str()); };
    o.ablation.train.progress = [](const training::TrainProgress& p) {
      std::fprintf(stderr, "\r[%5.1f%%] %-40s loss %.4f  ETA %4.0fs ", 100 * p.fraction, p.stage.c_str(), p.loss, p.eta_seconds);
    };
  }
  auto table = evaluation::run_ablations(pool, eval, config, o.ablation);
  if (!o.quiet) std::fprintf(stderr, "\n");
  table.notes.push_back("Training pool " + o.pool + ", evaluation pool " + o.eval + ", seed " +
                        std::to_string(o.ablation.train.seed) + ".");
  evaluation::write_eval_table(table, o.json, o.out);
  std::printf("%s", table.to_markdown().c_str());
  return 0;
}

VerbRun setup_ablate(CLI::App& app) {
  auto o = std::make_shared<AblateCliOptions>();
  app.add_option("--pool", o->pool, "Training embedding pool directory (unpaired unimodal pools)")->required();
  app.add_option("--eval", o->eval, "Evaluation pool directory (pair/label columns, prompts.safetensors)")->required();
  app.add_option("--config", o->config, "Binding config JSON");
  app.add_option("--preset", o->preset, "Official layout (base, large, full) instead of --config");
  app.add_option("--out", o->out, "Write the table as Markdown here (atomic)");
  app.add_option("--json", o->json, "Write the table as JSON here (atomic)");
  app.add_option("--seed", o->ablation.train.seed, "Seed of every variant (same seed + --threads = same table)")->capture_default_str();
  app.add_option("--threads", o->ablation.train.threads, "Threads (0 = all cores)")->capture_default_str();
  app.add_option("--epochs-proj", o->ablation.train.projector_epochs, "Epochs per projector head")->capture_default_str();
  app.add_option("--epochs-router", o->ablation.train.router_epochs, "Router epochs")->capture_default_str();
  app.add_option("--batch", o->ablation.train.batch, "Batch size")->capture_default_str();
  app.add_option("--topk", o->ablation.aggregate_topk, "k of the softmax-aggregated variant")->capture_default_str();
  app.add_flag("--quiet", o->quiet, "No progress on stderr");
  return [o] { return run_ablate(*o); };
}

}  // namespace

REGISTER_VERB("ablate", "Ablations of the binding method: full vs 1 head, no L_dec, the other router objective, aggregated tuples, uniform routing",
              setup_ablate);

}  // namespace omnibind::cli
