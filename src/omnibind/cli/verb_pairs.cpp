// omnibind pairs: mine pseudo item tuples from unpaired embedding pools (training/tuple_mining.h).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "omnibind/cli/distributed_flags.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::cli {
namespace {

struct PairsOptions {
  std::string pools, out, stats_json;
  training::MiningOptions mining;
  int threads = 0;
  bool quiet = false;
  distributed::LaunchOptions dist;
};

// One human line per stat family on stderr; the full JSON goes into the file's metadata.
void print_stats(const nlohmann::json& stats) {
  std::fprintf(stderr, "tuples: %lld (index %s)\n", static_cast<long long>(stats["tuples"].get<int64_t>()),
               stats["index"].get<std::string>().c_str());
  for (const auto& [anchor, plan] : stats["plan"].items()) {
    std::string line;
    for (const auto& hop : plan) line += (line.empty() ? "" : "; ") + hop.get<std::string>();
    std::fprintf(stderr, "plan %s: %s\n", anchor.c_str(), line.c_str());
  }
  for (const auto& [m, h] : stats["similarity_histogram"].items())
    std::fprintf(stderr, "similarity to %s members: mean %.3f\n", m.c_str(), h["mean"].get<double>());
  for (const auto& [pair, p] : stats["purity"].items()) std::fprintf(stderr, "class purity %s: %.3f\n", pair.c_str(), p.get<double>());
  if (stats.contains("recall_at_10"))
    for (const auto& [k, r] : stats["recall_at_10"].items()) std::fprintf(stderr, "recall@10 vs exact %s: %.3f\n", k.c_str(), r.get<double>());
}

int run_pairs(const PairsOptions& o) {
  require(o.threads >= 0, "--threads must be 0 (all cores) or a positive count");
  tensor_io::set_compute_threads(o.threads);
  auto pool = training::EmbeddingPool::open(o.pools);
  // Several ranks: each searches its share of the anchors, every rank gets all tuples, rank 0 writes.
  auto dist = distributed::DistributedContext::connect(o.dist);
  training::MiningOptions mining = o.mining;
  mining.dist = &dist;
  const bool quiet = o.quiet || !dist.is_root();
  nlohmann::json stats;
  auto progress = [&](const std::string& stage, double f) {
    if (!quiet) std::fprintf(stderr, "\r%s %5.1f%%", stage.c_str(), 100 * f);
  };
  auto tuples = training::mine_tuples(pool, mining, &stats, progress);
  if (!quiet) std::fprintf(stderr, "\n");
  if (dist.is_root()) {
    training::save_tuples(o.out, tuples, stats);
    if (!o.stats_json.empty()) write_bytes_atomically(o.stats_json, stats.dump(2) + "\n");
    print_stats(stats);
  }
  dist.barrier("waiting for rank 0 to write the tuples");
  return 0;
}

VerbRun setup_pairs(CLI::App& app) {
  auto o = std::make_shared<PairsOptions>();
  app.add_option("--pools", o->pools, "Embedding pool directory (manifest.json + <modality>.safetensors)")->required();
  app.add_option("--out", o->out, "Output tuples file (.safetensors)")->required();
  app.add_option("--index", o->mining.index, "Flat (exact, streamed) or a FAISS factory string: IVF256,Flat, HNSW32, ...")
      ->capture_default_str();
  app.add_option("--topk", o->mining.topk, "Members per modality (needs --aggregate when > 1)")->capture_default_str();
  app.add_flag("--aggregate", o->mining.aggregate, "Softmax-aggregated pseudo members over the top-k (FreeBind/C-MCR way)");
  app.add_option("--temperature", o->mining.temperature, "Softmax temperature for --aggregate")->capture_default_str();
  app.add_option("--max-anchors", o->mining.max_anchors_per_modality, "Subsample anchors per modality (-1 = all)")
      ->capture_default_str();
  app.add_option("--block", o->mining.block_rows, "Rows per streamed block")->capture_default_str();
  app.add_option("--seed", o->mining.seed, "Seed for anchor subsampling")->capture_default_str();
  app.add_option("--threads", o->threads, "Threads for the similarity GEMMs and FAISS (0 = all cores)")->capture_default_str();
  app.add_option("--stats-json", o->stats_json, "Also write the statistics as JSON here");
  app.add_flag("--quiet", o->quiet, "No progress on stderr");
  add_distributed_flags(app, o->dist);
  return [o] { return run_pairs(*o); };
}

}  // namespace

REGISTER_VERB("pairs", "Mine pseudo item tuples from unpaired embedding pools (exact or FAISS IVF/HNSW)", setup_pairs);

}  // namespace omnibind::cli
