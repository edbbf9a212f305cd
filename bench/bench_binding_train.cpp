// Whole binding training (`train_binding`: projector heads, then routers) on an issue-16-shaped synthetic
// world, timed three ways in one run: the head bank (training/head_bank.h, the default), the per-head
// torch::nn loop (TrainOptions::head_bank = false, the same math), and a plain PyTorch implementation of
// the same head/router shapes and step counts (bench/python/binding_train_baseline.py, Debian's python3-torch).
// Wall, user and system CPU seconds and page faults per run; the projector stage's GFLOP/s against this
// machine's GEMM rate for the same GEMM shapes, measured in the same run.
//
// World (defaults): a 64-d image-text backbone, three audio-text spaces each good on a third of 40 classes,
// an image-text space, a point-image-text space, an ImageBind-like audio-image-text space (IB): 6 trained
// spaces x 7 heads; 6,000 items per modality -> 24,000 tuples; hidden 256, routers [128, 32]; 8 + 10 epochs.
//   bench_binding_train [--rows 6000] [--classes 40] [--hidden 256] [--router-hidden 128,32] [--heads 7]
//                       [--epochs-proj 8] [--epochs-router 10] [--batch 256] [--threads 2] [--seed 1]
//                       [--modes bank,plain,python] [--dir /tmp/omnibind_bench_binding_train]
// Prints JSON.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/common/process_memory.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"
#include "gemm_rate.h"
#include "python_baseline.h"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace {
namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace omnibind;

struct Usage {
  double wall = 0, user = 0, sys = 0;
  long faults = 0;
  static Usage now() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    Usage u;
    u.wall = std::chrono::duration<double>(clk::now().time_since_epoch()).count();
    u.user = static_cast<double>(r.ru_utime.tv_sec) + r.ru_utime.tv_usec * 1e-6;
    u.sys = static_cast<double>(r.ru_stime.tv_sec) + r.ru_stime.tv_usec * 1e-6;
    u.faults = r.ru_minflt + r.ru_majflt;
    return u;
  }
  nlohmann::json since(const Usage& a) const {
    return {{"wall_s", wall - a.wall}, {"user_s", user - a.user}, {"sys_s", sys - a.sys}, {"page_faults", faults - a.faults}};
  }
};

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string s;
  std::getline(f, s);
  return s;
}


}  // namespace

int main(int argc, char** argv) {
  common::keep_freed_memory_in_process();
  int64_t rows = 6000, classes = 40, hidden = 256, heads = 7, batch = 256;
  std::vector<int64_t> router_hidden = {128, 32};
  int epochs_proj = 8, epochs_router = 10, threads = 2;
  uint64_t seed = 1;
  std::string modes = "bank,plain,python";
  fs::path dir = "/tmp/omnibind_bench_binding_train";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--rows") rows = std::stoll(v);
    else if (k == "--classes") classes = std::stoll(v);
    else if (k == "--hidden") hidden = std::stoll(v);
    else if (k == "--heads") heads = std::stoll(v);
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--epochs-proj") epochs_proj = std::stoi(v);
    else if (k == "--epochs-router") epochs_router = std::stoi(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--seed") seed = std::stoull(v);
    else if (k == "--modes") modes = v;
    else if (k == "--dir") dir = v;
    else if (k == "--router-hidden") {
      router_hidden.clear();
      std::stringstream ss(v);
      for (std::string p; std::getline(ss, p, ',');) router_hidden.push_back(std::stoll(p));
    } else {
      std::fprintf(stderr, "bench_binding_train: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  tensor_io::set_compute_threads(threads);
  nlohmann::json out;
  out["load_average_start"] = loadavg();

  // ---- the world, its pools and tuples ---------------------------------------------------------
  evaluation::SyntheticWorldOptions wo;
  wo.seed = seed;
  wo.classes = classes;
  wo.latent_dim = 48;
  wo.train_rows = rows;
  wo.eval_tuples = 50;
  const int64_t third = classes / 3;
  wo.experts = {{"AT_A", {"audio", "text"}, 48, 0, third, 0},
                {"AT_B", {"audio", "text"}, 40, third, 2 * third, 0},
                {"AT_C", {"audio", "text"}, 56, 2 * third, -1, 0},
                {"ITX", {"image", "text"}, 48, 0, -1, 1},
                {"PIT", {"point", "image", "text"}, 64, 0, -1, 2},
                {"IB", {"audio", "image", "text"}, 64, 0, -1, 1},
                {"CLIP", {"image", "text"}, 64, 0, -1, 1}};
  wo.backbone = "CLIP";
  const auto world = evaluation::make_synthetic_world(wo);
  fs::remove_all(dir);
  evaluation::write_synthetic_pools(world, dir / "train", dir / "eval");
  binding::BindingConfig config = world.binding_config(heads, hidden);
  config.router_hidden = router_hidden;
  const training::EmbeddingPool pool = training::EmbeddingPool::open(dir / "train");
  const training::TupleSet tuples = training::mine_tuples(pool, training::MiningOptions{});
  const int64_t T = tuples.size(), D = pool.dim(config.backbone);

  // Shapes for the projector FLOPs and the PyTorch baseline: every trained space with its pairs.
  nlohmann::json spec;
  spec["threads"] = threads;
  spec["seed"] = seed;
  spec["batch"] = batch;
  spec["heads"] = heads;
  spec["hidden"] = hidden;
  spec["out"] = D;
  spec["proj_epochs"] = epochs_proj;
  spec["router_epochs"] = epochs_router;
  spec["tuples"] = T;
  spec["router_hidden"] = router_hidden;
  spec["text_temperature"] = config.text_temperature;
  std::vector<const binding::ExpertSpec*> spaces = config.projected_experts();
  if (const auto* ib = config.find(binding::BindingConfig::kImageBind)) spaces.push_back(ib);
  double proj_flops = 0;
  int64_t median_dim = 0;
  for (const auto* s : spaces) {
    int64_t mods = 0;
    for (const auto& m : s->modalities) mods += pool.has(m, s->name) ? 1 : 0;
    const int64_t N = T * mods, d = pool.dim(s->name);
    spec["spaces"].push_back({{"name", s->name}, {"dim", d}, {"pairs", N}});
    for (int64_t b = 0; b + 1 < N; b += batch)
      proj_flops += heads * epochs_proj *
                    bench::projector_step_flops(static_cast<double>(std::min(batch, N - b)), static_cast<double>(d),
                                                static_cast<double>(hidden), static_cast<double>(D));
    median_dim += d;
  }
  median_dim /= static_cast<int64_t>(spaces.size());
  for (const auto& m : binding::all_modalities()) {
    if (config.slots(m).empty() || !config.router_inputs.count(m) || !pool.has_modality(m)) continue;
    int64_t in = 0;
    for (const auto& n : config.router_inputs.at(m)) in += pool.dim(n);
    nlohmann::json slots = nlohmann::json::array();
    for (const auto& s : config.slots(m)) slots.push_back({{"space", s}, {"dim", pool.dim(s)}});
    spec["modalities"].push_back({{"name", m}, {"router_in", in}, {"slots", slots}});
  }
  out["world"] = {{"tuples", T}, {"spaces", spec["spaces"]}, {"modalities", spec["modalities"]}, {"hidden", hidden},
                  {"heads", heads}, {"router_hidden", router_hidden}, {"epochs_proj", epochs_proj},
                  {"epochs_router", epochs_router}, {"batch", batch}, {"threads", threads}};
  out["projector_gflop"] = proj_flops / 1e9;

  // ---- this machine's GEMM rate for the step's shapes (1 thread, and `threads` threads) ----------
  {
    tensor_io::set_compute_threads(1);
    const double one = bench::gemm_rate(batch, median_dim, hidden, D, 200);
    tensor_io::set_compute_threads(threads);
    const double all = bench::gemm_rate(batch, median_dim, hidden, D, 200);
    out["gemm_rate_gflops"] = {{"shapes", "the projector step's 7 GEMMs, batch " + std::to_string(batch) + ", d " +
                                              std::to_string(median_dim) + ", H " + std::to_string(hidden) + ", D " +
                                              std::to_string(D)},
                               {"one_thread", one},
                               {"threads", all},
                               {"one_thread_times_threads", one * threads}};
  }

  // ---- the runs ---------------------------------------------------------------------------------
  std::stringstream ms(modes);
  for (std::string mode; std::getline(ms, mode, ',');) {
    if (mode == "python") {
      const fs::path spec_file = dir / "spec.json";
      std::ofstream(spec_file) << spec.dump();
      out["runs"]["python"] = bench::run_python_baseline("binding_train_baseline.py", spec_file.string(), threads);
      std::fprintf(stderr, "python: %s\n", out["runs"]["python"].dump().c_str());
      continue;
    }
    if (mode != "bank" && mode != "plain") {
      std::fprintf(stderr, "bench_binding_train: unknown mode %s\n", mode.c_str());
      return 2;
    }
    training::TrainOptions o;
    o.seed = seed;
    o.threads = threads;
    o.projector_epochs = epochs_proj;
    o.router_epochs = epochs_router;
    o.batch = batch;
    o.head_bank = mode == "bank";
    Usage proj_end;
    bool in_projectors = true;
    o.progress = [&](const training::TrainProgress& p) {
      if (in_projectors && p.stage.rfind("projector", 0) == 0) proj_end = Usage::now();
      else in_projectors = false;
    };
    const Usage start = Usage::now();
    const training::NamedTensors state = training::train_binding(pool, tuples, config, o);
    const Usage end = Usage::now();
    nlohmann::json r = end.since(start);
    r["projector"] = proj_end.since(start);
    r["router"] = end.since(proj_end);
    r["projector_gflops"] = proj_flops / (proj_end.wall - start.wall) / 1e9;
    r["tensors"] = state.size();
    out["runs"][mode] = r;
    std::fprintf(stderr, "%s: %s\n", mode.c_str(), r.dump().c_str());
  }
  auto wall = [&](const std::string& m, const char* stage) -> double {
    if (!out["runs"].contains(m) || out["runs"][m].is_null()) return 0;
    const auto& r = out["runs"][m];
    return stage ? r[stage]["wall_s"].get<double>() : r["wall_s"].get<double>();
  };
  for (const char* stage : {static_cast<const char*>(nullptr), "projector", "router"}) {
    const std::string key = stage ? stage : "total";
    const double bank = wall("bank", stage), plain = wall("plain", stage), py = wall("python", stage);
    if (bank > 0 && py > 0) out["speedup_vs_python"][key] = py / bank;
    if (bank > 0 && plain > 0) out["speedup_vs_per_head"][key] = plain / bank;
  }
  if (out["runs"].contains("bank")) {
    const double g = out["runs"]["bank"]["projector_gflops"].get<double>();
    out["projector_fraction_of_gemm_rate"] = g / out["gemm_rate_gflops"]["one_thread_times_threads"].get<double>();
  }
  out["load_average_end"] = loadavg();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
