// omnibind train: bind expert spaces from unpaired pools — projector heads, then routers
// (training/binding_trainer.h). Mines tuples itself unless --pairs is given.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "omnibind/binding/binding_config.h"
#include "omnibind/cli/distributed_flags.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::cli {
namespace {
namespace fs = std::filesystem;

struct TrainCliOptions {
  std::string pools, config, out, pairs;
  training::TrainOptions train;
  bool no_decoupling = false, aggregate = false, quiet = false;
  std::string router_objective = "denoise";
  std::optional<double> align_weight, noise_weight;
  std::optional<std::string> validation_metric;
  bool text_keeps = false, text_free = false;
  int topk = 8;
  distributed::LaunchOptions dist;
};

int run_train(TrainCliOptions& o) {
  const std::string ext = fs::path(o.out).extension().string();
  if (ext != ".safetensors" && ext != ".pt" && ext != ".pth")
    throw InputError("--out " + o.out + ": use a .safetensors, .pt or .pth file name");
  if (!fs::is_directory(fs::absolute(o.out).parent_path()))
    throw InputError("--out " + o.out + ": the directory does not exist");
  training::set_router_objective(o.train, o.router_objective);  // then the explicit overrides
  if (o.align_weight) o.train.router_align_weight = *o.align_weight;
  if (o.noise_weight) o.train.router_noise_weight = *o.noise_weight;
  if (o.validation_metric) o.train.router_validation_metric = *o.validation_metric;
  if (o.no_decoupling) o.train.decoupling = false;
  if (o.text_keeps && o.text_free) throw InputError("--text-router-keeps-decoupling and --text-router-free contradict each other");
  if (o.text_keeps) o.train.router_text_keeps_decoupling = true;
  if (o.text_free) o.train.router_text_keeps_decoupling = false;
  training::check_head_target_options(o.train);  // before mining, which can take long
  auto config = binding::load_binding_config(o.config);
  auto pool = training::EmbeddingPool::open(o.pools);
  training::check_pool_against_config(pool, config);
  // Several ranks: mining and every batch shared out, rank 0 writes the state file and the checkpoint.
  auto dist = distributed::DistributedContext::connect(o.dist);
  if (!dist.is_root()) o.quiet = true;
  training::TupleSet tuples;
  if (!o.pairs.empty()) {
    tuples = training::load_tuples(o.pairs);
  } else {
    training::MiningOptions m;
    m.aggregate = o.aggregate;
    m.topk = o.aggregate ? o.topk : 1;
    m.seed = o.train.seed;
    m.dist = &dist;
    tuples = training::mine_tuples(pool, m, nullptr, [&](const std::string& stage, double f) {
      if (!o.quiet) std::fprintf(stderr, "\r%s %5.1f%%   ", stage.c_str(), 100 * f);
    });
    if (!o.quiet) std::fprintf(stderr, "\n");
  }
  for (int m = 0; m < 4; ++m)
    if (tuples.index.select(1, m).select(1, 0).max().item<int64_t>() >= pool.rows(training::tuple_modalities()[m]))
      throw InputError("--pairs " + o.pairs + ": tuples point past the rows of " + o.pools + " (mined from another pool?)");
  o.train.state_file = o.out + ".train-state.safetensors";
  if (!o.quiet)
    o.train.progress = [](const training::TrainProgress& p) {
      std::fprintf(stderr, "\r[%5.1f%%] %-40s loss %.4f  ETA %4.0fs ", 100 * p.fraction, p.stage.c_str(), p.loss, p.eta_seconds);
    };
  o.train.dist = &dist;
  auto state = training::train_binding(pool, tuples, config, o.train);
  if (!o.quiet) std::fprintf(stderr, "\n");
  if (!dist.is_root()) {
    dist.barrier("waiting for rank 0 to write the checkpoint");
    return 0;
  }
  training::write_binding_checkpoint(o.out, state, config);
  std::error_code ec;
  fs::remove(o.train.state_file, ec);  // the run finished: the resume state is no longer needed
  for (const auto& m : binding::all_modalities())
    if (!config.slots(m).empty() && config.router_inputs.count(m) && !pool.has_modality(m))
      std::fprintf(stderr, "note: the pool has no %s items; the %s router keeps its initial weights\n", m.c_str(), m.c_str());
  std::fprintf(stderr, "wrote %s (%zu tensors, %lld tuples)\n", o.out.c_str(), state.size(), static_cast<long long>(tuples.size()));
  dist.barrier("waiting for rank 0 to write the checkpoint");
  return 0;
}

VerbRun setup_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  app.add_option("--pools", o->pools, "Embedding pool directory")->required();
  app.add_option("--config", o->config, "Binding config JSON (experts, backbone, heads, widths, router inputs)")->required();
  app.add_option("--out", o->out, "Output heads checkpoint (.safetensors or .pt), official key layout")->required();
  app.add_option("--pairs", o->pairs, "Tuples from `omnibind pairs` (mined here when absent)");
  app.add_option("--seed", o->train.seed, "Seed (same seed + same --threads = same bytes)")->capture_default_str();
  app.add_option("--threads", o->train.threads, "Threads (0 = all cores)")->capture_default_str();
  app.add_option("--epochs-proj", o->train.projector_epochs, "Epochs per projector head")->capture_default_str();
  app.add_option("--min-steps-proj", o->train.projector_min_steps,
                 "At least this many steps per projector head (more epochs for small pools; 0 = --epochs-proj exactly)")
      ->capture_default_str();
  app.add_option("--epochs-router", o->train.router_epochs, "Router epochs")->capture_default_str();
  app.add_option("--batch", o->train.batch, "Batch size")->capture_default_str();
  app.add_option("--lr", o->train.projector_lr, "Projector learning rate")->capture_default_str();
  app.add_option("--router-lr", o->train.router_lr, "Router learning rate")->capture_default_str();
  app.add_option("--temperature", o->train.temperature, "InfoNCE temperature")->capture_default_str();
  app.add_option("--router-objective", o->router_objective,
                 "What the routers learn: denoise (route each input toward the spaces that agree on it; no pairing needed) "
                 "or paper (OmniBind's L_align + L_dec)")
      ->capture_default_str()
      ->check(CLI::IsMember({"denoise", "paper"}));
  app.add_option("--router-align-weight", o->align_weight, "Weight of L_align in the router loss (overrides the objective's)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--router-noise-weight", o->noise_weight, "Weight of L_noise in the router loss (overrides the objective's)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--router-validation-metric", o->validation_metric,
                 "Held-out score: noise (estimated error variance), top1 or mrr (pseudo-tuple retrieval); overrides the objective's")
      ->check(CLI::IsMember({"noise", "top1", "mrr"}));
  app.add_option("--router-unvalidated", o->train.router_unvalidated,
                 "Routing when too few tuples can be held out to validate: uniform or trained")
      ->capture_default_str()
      ->check(CLI::IsMember({"uniform", "trained"}));
  app.add_flag("--no-decoupling", o->no_decoupling, "No language decoupling loss (L_dec) even with --router-objective paper");
  app.add_option("--decoupling-margin", o->train.decoupling_margin,
                 "L_dec stops pulling once a text's family mass reaches this (1 = plain cross-entropy)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  app.add_option("--uncovered-target", o->train.uncovered_target,
                 "Target for modalities the backbone lacks: the backbone's embedding of the tuple's text or image member, or their mean")
      ->capture_default_str();
  app.add_option("--uncovered-pairs", o->train.uncovered_pairs,
                 "Pairs an uncovered modality trains on: all tuples, only those it or its target anchored (anchored), or none")
      ->capture_default_str();
  app.add_option("--uncovered-keep", o->train.uncovered_keep,
                 "Share of those pairs kept, the most similar hops first (ranked per anchor modality; 1 = all)")
      ->capture_default_str();
  app.add_option("--router-validation", o->train.router_validation,
                 "Share of tuples held out to validate the routers (best epoch, shrink toward uniform); 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  app.add_option("--router-validation-pairs", o->train.router_validation_pairs,
                 "Held-out member pairs scored: indirect (not linked by a direct mining hop) or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"indirect", "all"}));
  app.add_flag("--text-router-keeps-decoupling", o->text_keeps,
               "Validation shrinks the text router only as far as held-out texts keep L_dec's split by source family "
               "(the denoise objective's default)");
  app.add_flag("--text-router-free", o->text_free, "Validation shrinks the text router like any other (the paper objective's default)");
  app.add_flag("--aggregate", o->aggregate, "Mine softmax-aggregated pseudo members instead of retrieved items");
  app.add_option("--topk", o->topk, "Top-k for --aggregate")->capture_default_str();
  app.add_flag("--resume", o->train.resume, "Continue from OUT.train-state.safetensors");
  app.add_flag("--quiet", o->quiet, "No progress on stderr");
  add_distributed_flags(app, o->dist);
  return [o] { return run_train(*o); };
}

}  // namespace

REGISTER_VERB("train", "Bind expert spaces from unpaired embedding pools: projector heads, then routers", setup_train);

}  // namespace omnibind::cli
