// Tuple mining throughput (queries/s) and peak RSS on a generated image+text pool (one expert "IT",
// N x D f16 per modality; default 1M x 1024, --n to shrink). Run once per phase so each phase's
// peak RSS is its own:
//   bench_mining --write DIR [--n N] [--dim D] [--experts 1|2]   generate the pool (clustered rows,
//       labels); --experts 2 adds "AIT" (audio-image-text, a rotated noisier view of the same classes) so
//       the pool can also train a binding of AIT into IT (docs/PERFORMANCE.md, 1M mine + train)
//   bench_mining --pool DIR --index Flat|IVF1024,Flat [--queries Q] [--threads T]
// Prints JSON: queries, seconds, queries/s, peak RSS, class purity, recall@10 for approximate indexes.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "omnibind/common/process_memory.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"

using namespace omnibind;
using namespace omnibind::training;

namespace {
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void write_pool(const std::string& dir, int64_t n, int64_t dim, int experts) {
  PoolManifest m;
  m.experts = {{"IT", {"image", "text"}, dim}};
  // AIT covers more modalities, so mining keeps using the specialist IT for image<->text hops.
  if (experts > 1) m.experts.push_back({"AIT", {"audio", "image", "text"}, dim});
  m.backbone = "IT";
  const int64_t classes = 1000;
  for (int64_t c = 0; c < classes; ++c) m.classes.push_back("c" + std::to_string(c));
  at::manual_seed(1);
  at::Tensor centres = at::randn({classes, dim});
  centres = centres / centres.norm(2, 1, true);
  at::Tensor rotation;  // AIT's view: a random orthogonal map of IT's space, plus more noise
  if (experts > 1) rotation = std::get<0>(at::linalg_qr(at::randn({dim, dim})));
  PoolWriter w(dir, m, /*shard_rows=*/1 << 17);  // small shards keep the writer's buffer bounded
  w.set_half(true);
  const int64_t chunk = 1 << 16;
  for (const char* mod : {"image", "text"})
    for (int64_t b = 0; b < n; b += chunk) {
      const int64_t rows_n = std::min(chunk, n - b);
      at::Tensor labels = at::randint(classes, {rows_n}, at::kLong);
      at::Tensor x = centres.index_select(0, labels) + 0.03 * at::randn({rows_n, dim});
      x = x / x.norm(2, 1, true);
      std::map<std::string, at::Tensor> rows{{"IT", x}};
      if (experts > 1) {
        at::Tensor y = at::mm(x, rotation) + 0.05 * at::randn({rows_n, dim});
        rows["AIT"] = y / y.norm(2, 1, true);
      }
      w.add(mod, rows, {{"label", labels}});
    }
  w.finish();
}
}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  std::string write_dir, pool_dir, index = "Flat";
  int64_t n = 1000000, dim = 1024, queries = 1000;
  int threads = 0, experts = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--write") write_dir = v;
    else if (a == "--pool") pool_dir = v;
    else if (a == "--index") index = v;
    else if (a == "--n") n = std::atoll(v.c_str());
    else if (a == "--dim") dim = std::atoll(v.c_str());
    else if (a == "--queries") queries = std::atoll(v.c_str());
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--experts") experts = std::atoi(v.c_str());
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  if (threads > 0) tensor_io::set_compute_threads(threads);
  nlohmann::json out;
  auto t0 = std::chrono::steady_clock::now();
  if (!write_dir.empty()) {
    write_pool(write_dir, n, dim, experts);
    out = {{"phase", "write"}, {"rows_per_modality", n}, {"dim", dim}, {"dtype", "f16"}, {"experts", experts}};
  } else {
    EmbeddingPool pool = EmbeddingPool::open(pool_dir);
    MiningOptions o;
    o.index = index;
    o.max_anchors_per_modality = queries;
    o.recall_sample = 200;
    nlohmann::json stats;
    TupleSet t = mine_tuples(pool, o, &stats);
    out = {{"phase", "mine"}, {"index", index}, {"rows_per_modality", pool.rows("text")}, {"dim", pool.dim("IT")},
           {"queries", t.size()}, {"purity", stats["purity"]}};
    if (stats.contains("recall_at_10")) out["recall_at_10"] = stats["recall_at_10"];
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out["seconds"] = s;
  if (out.contains("queries")) out["queries_per_s"] = out["queries"].get<double>() / s;
  out["peak_rss_mb"] = peak_rss_mb();
  out["threads"] = at::get_num_threads();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
