// EVA02-CLIP-bigE-14-plus vision tower at the real size (random weights, WeightSource::random):
// width 1792, 16 heads of 112, MLP 15360, 257 tokens, post-norm blocks. Seconds per image in fp32
// and bf16 at two depths, extrapolated to the real 64 blocks (time = rest + 64 x per-block), as
// bench_uni3d_forward does: the whole tower is 17.4 GB of fp32 weights.
// With --baseline, a same-shape PyTorch module (bench/python/eva_clip_blocks.py, needs Debian's
// python3-torch) runs in the same invocation with the same threads.
// With --rss, the whole 64-block tower is built in bf16 and one image embedded; the JSON gives the
// process's peak resident memory (VmHWM) then (aim: within 11 GB; weights 8.7 GB).
//   bench_eva_clip [--threads N] [--depths 1,2] [--reps 2] [--baseline] [--rss] [--no-fp32] [--no-bf16]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "python_baseline.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/compute_threads.h"

using namespace omnibind;
using namespace omnibind::experts::eva_clip;

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// kB fields of /proc/self/status ("VmHWM", "VmRSS", "RssAnon", "RssFile").
double status_mb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return -1;
}

EvaVisionTower tower(int64_t depth, at::ScalarType dtype) {
  EvaVisionConfig c = builtin_config("").vision;
  c.layers = depth;
  return EvaVisionTower::load(experts::WeightSource::random(dtype, 7), c, 1024);
}

double seconds_per_image(const EvaVisionTower& t, int reps) {
  c10::InferenceMode guard;
  at::manual_seed(0);
  at::Tensor px = at::randn({1, 3, 224, 224});
  t.forward(px);  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = wall_seconds();
    t.forward(px);
    best = std::min(best, wall_seconds() - t0);
  }
  return best;
}

nlohmann::json python(int64_t depth, const std::string& dtype, int threads, int reps) {
  return omnibind::bench::run_python_baseline(
      "eva_clip_blocks.py", std::to_string(depth) + " " + dtype + " " + std::to_string(threads) + " " + std::to_string(reps),
      threads);
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  int threads = 1, reps = 2;
  int64_t d1 = 1, d2 = 2;
  bool baseline = false, rss = false, fp32 = true, bf16 = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--depths" && i + 1 < argc) std::sscanf(argv[++i], "%ld,%ld", &d1, &d2);
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--baseline") baseline = true;
    else if (a == "--rss") rss = true;
    else if (a == "--no-fp32") fp32 = false;
    else if (a == "--no-bf16") bf16 = false;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  threads = tensor_io::set_compute_threads(threads);
  const EvaClipConfig real = builtin_config("");
  nlohmann::json out = {{"bench", "eva_clip_vision"},
                        {"shape", "EVA02-CLIP-bigE-14-plus vision: width 1792, 16 heads x 112, MLP 15360, 257 tokens, post-norm"},
                        {"vision_parameters", real.parameter_count() - 694332160 - 1},
                        {"threads", threads},
                        {"depths", {d1, d2}},
                        {"full_depth", real.vision.layers},
                        {"repeats", reps},
                        {"stat", "best wall seconds, batch 1"}};
  const double full = static_cast<double>(real.vision.layers);
  auto extrapolate = [&](double t1, double t2) {
    const double block = (t2 - t1) / static_cast<double>(d2 - d1);
    const double total = t1 + block * (full - static_cast<double>(d1));
    return nlohmann::json{{"at_depths_s", {t1, t2}}, {"per_block_s", block}, {"full_64_blocks_s_per_image", total},
                          {"images_per_s", 1.0 / total}};
  };
  std::vector<std::pair<std::string, at::ScalarType>> kinds;
  if (fp32) kinds.push_back({"fp32", at::kFloat});
  if (bf16) kinds.push_back({"bf16", at::kBFloat16});
  for (auto& [name, dt] : kinds) {
    const double t1 = seconds_per_image(tower(d1, dt), reps), t2 = seconds_per_image(tower(d2, dt), reps);
    nlohmann::json r = {{"omnibind", extrapolate(t1, t2)}};
    if (baseline) {
      auto a = python(d1, name, threads, reps), b = python(d2, name, threads, reps);
      if (!a.is_null() && !b.is_null()) {
        r["pytorch"] = extrapolate(a["seconds_per_image"].get<double>(), b["seconds_per_image"].get<double>());
        r["speedup_vs_pytorch"] = r["pytorch"]["full_64_blocks_s_per_image"].get<double>() /
                                  r["omnibind"]["full_64_blocks_s_per_image"].get<double>();
      } else {
        r["pytorch"] = "unavailable (needs /usr/bin/python3 with torch: apt-get install python3-torch)";
      }
    }
    out[name] = r;
    std::cerr << name << ": " << r.dump() << std::endl;  // partial results survive a timeout
  }
  if (rss) {
    const double t0 = wall_seconds();
    EvaVisionTower full_tower = tower(real.vision.layers, at::kBFloat16);
    const double loaded = wall_seconds();
    const double after_load = status_mb("VmRSS");
    c10::InferenceMode guard;
    at::Tensor emb = omnibind_normalize(full_tower.forward(at::randn({1, 3, 224, 224})));
    out["bf16_full_tower"] = {{"layers", real.vision.layers},
                              {"weights_gb", (real.parameter_count() - 694332160 - 1) * 2 / 1e9},
                              {"build_s", loaded - t0},
                              {"embed_one_image_s", wall_seconds() - loaded},
                              {"rss_after_load_mb", after_load},
                              {"peak_rss_mb", status_mb("VmHWM")},
                              {"embedding_norm", emb.norm().item<double>()}};
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
