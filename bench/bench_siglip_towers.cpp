// SigLIP towers at the released sizes (large16 = SigLip_384, so400m14 = SigLIP_400M_384) with random
// weights (no file needed): embeddings/s per tower and precision, JSON lines.
// With --baseline (image tower only), the vision tower is timed at two depths and extrapolated to the
// real layer count (time = rest + layers x per-layer, as bench_eva_clip does), and a same-shape PyTorch
// module (bench/python/siglip_blocks.py: transformers 4.37.2's eager SigLIP vision ops, separate q/k/v,
// tanh GELU, MAP head with nn.MultiheadAttention; needs Debian's python3-torch) runs in the same
// invocation with the same threads, depths and batch; one JSON line per size and precision.
//   bench_siglip_towers [--size large16|so400m14|all] [--tower image|text|all] [--precision fp32|bf16|all]
//                       [--threads 2] [--batch 1] [--iters 1] [--baseline] [--depths 1,2] [--reps 2]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "python_baseline.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/experts/siglip/siglip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/compute_threads.h"

using namespace omnibind::experts::siglip;
using omnibind::experts::WeightSource;

static double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

static double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best wall seconds of image_embeds on one batch (after one warm-up) for the vision tower cut to `depth`
// layers (the text tower, not timed, to one layer).
static double ours_seconds(SiglipConfig config, int64_t depth, at::ScalarType dt, int batch, int reps) {
  config.vision.layers = depth;
  config.text.layers = 1;
  auto model = SiglipModel::load(config, WeightSource::random(dt, 1));
  at::manual_seed(0);
  at::Tensor px = at::rand({batch, 3, config.image_size, config.image_size}) * 2 - 1;
  model.image_embeds(px);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = wall_seconds();
    model.image_embeds(px);
    best = std::min(best, wall_seconds() - t0);
  }
  return best;
}

static nlohmann::json python(const std::string& size, int64_t depth, const std::string& dtype, int threads, int reps,
                             int batch) {
  return omnibind::bench::run_python_baseline("siglip_blocks.py",
                                              size + " " + std::to_string(depth) + " " + dtype + " " +
                                                  std::to_string(threads) + " " + std::to_string(reps) + " " +
                                                  std::to_string(batch),
                                              threads);
}

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  std::string size = "all", tower = "all", precision = "all";
  int threads = 2, batch = 1, iters = 1, reps = 2;
  int64_t d1 = 1, d2 = 2;
  bool baseline = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--baseline") {
      baseline = true;
      continue;
    }
    if (i + 1 >= argc) { std::fprintf(stderr, "option %s needs a value\n", k.c_str()); return 2; }
    std::string v = argv[++i];
    if (k == "--size") size = v;
    else if (k == "--depths") std::sscanf(v.c_str(), "%ld,%ld", &d1, &d2);
    else if (k == "--reps") reps = std::stoi(v);
    else if (k == "--tower") tower = v;
    else if (k == "--precision") precision = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--iters") iters = std::stoi(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  threads = omnibind::tensor_io::set_compute_threads(threads);  // libtorch's and OpenBLAS's threads
  c10::InferenceMode guard;
  if (baseline) {
    for (std::string s : {"large16", "so400m14"}) {
      if (size != "all" && size != s) continue;
      const auto config = builtin_config(s);
      const double full = static_cast<double>(config.vision.layers);
      auto extrapolate = [&](double t1, double t2) {
        const double layer = (t2 - t1) / static_cast<double>(d2 - d1);
        const double total = t1 + layer * (full - static_cast<double>(d1));
        return nlohmann::json{{"at_depths_s", {t1, t2}}, {"per_layer_s", layer}, {"full_tower_s_per_batch", total},
                              {"images_per_s", batch / total}};
      };
      for (std::string prec : {"fp32", "bf16"}) {
        if (precision != "all" && precision != prec) continue;
        const at::ScalarType dt = prec == "bf16" ? at::kBFloat16 : at::kFloat;
        const double t1 = ours_seconds(config, d1, dt, batch, reps), t2 = ours_seconds(config, d2, dt, batch, reps);
        nlohmann::json r = {{"size", s},          {"key", config.key},     {"tower", "image"},
                            {"precision", prec},  {"threads", threads},    {"batch", batch},
                            {"depths", {d1, d2}}, {"full_depth", config.vision.layers}, {"repeats", reps},
                            {"stat", "best wall seconds per batch"}, {"omnibind", extrapolate(t1, t2)}};
        auto a = python(s, d1, prec, threads, reps, batch), b = python(s, d2, prec, threads, reps, batch);
        if (!a.is_null() && !b.is_null()) {
          r["pytorch"] = extrapolate(a["seconds_per_batch"].get<double>(), b["seconds_per_batch"].get<double>());
          r["speedup_vs_pytorch"] = r["pytorch"]["full_tower_s_per_batch"].get<double>() /
                                    r["omnibind"]["full_tower_s_per_batch"].get<double>();
        } else {
          r["pytorch"] = "unavailable (needs /usr/bin/python3 with torch: apt-get install python3-torch)";
        }
        std::printf("%s\n", r.dump().c_str());
        std::fflush(stdout);
      }
    }
    return 0;
  }
  for (std::string s : {"large16", "so400m14"}) {
    if (size != "all" && size != s) continue;
    const auto config = builtin_config(s);
    for (std::string prec : {"fp32", "bf16"}) {
      if (precision != "all" && precision != prec) continue;
      auto t0 = std::chrono::steady_clock::now();
      auto model = SiglipModel::load(config, WeightSource::random(prec == "bf16" ? at::kBFloat16 : at::kFloat, 1));
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (std::string t : {"image", "text"}) {
        if (tower != "all" && tower != t) continue;
        at::manual_seed(0);
        at::Tensor input = t == "image" ? at::rand({batch, 3, config.image_size, config.image_size}) * 2 - 1
                                        : at::randint(0, config.vocab_size, {batch, config.context}, at::kLong);
        auto run = [&] { return t == "image" ? model.image_embeds(input) : model.text_embeds(input); };
        auto t1 = std::chrono::steady_clock::now();
        at::Tensor out;
        for (int i = 0; i < iters; ++i) out = run();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::printf("{\"size\":\"%s\",\"key\":\"%s\",\"tower\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"batch\":%d,"
                    "\"load_s\":%.2f,\"seconds\":%.3f,\"items_per_s\":%.4f,\"out_norm\":%.6f,\"peak_rss_mb\":%.0f}\n",
                    s.c_str(), config.key.c_str(), t.c_str(), prec.c_str(), threads, batch, load_s, sec,
                    batch * iters / sec, out.norm(2, {-1}).mean().item<double>(),
                    peak_rss_mb());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
