// Binding over the world family (issue 16 items 1-2): on the held-out worlds (training/world_family.h), learned vs
// uniform routing vs the best single space per modality pair (class-level precision@1, both directions), for the
// C++ trainer AND the plain PyTorch baseline (bench/python/binding_baseline.py) on the same pools, the same mined
// tuples (written once by the C++ miner, read by both) and the same threads, with wall/user/sys times.
//   bench_world_family [--worlds N] [--first K] [--split heldout|tuning] [--threads T] [--seed S]
//                      [--rows-scale F (training pools only)] [--epochs E] [--uncovered-target text|image|mean]
//                      [--uncovered-pairs all|anchored|none] [--uncovered-keep Q] [--min-steps S] [--no-python] [--no-cpp] [--dir DIR]
//                      [--markdown FILE] [--jsonl FILE]
//                      [--router-validation-pairs indirect|all] [--router-validation-metric top1|mrr|noise]
//                      [--min-gain X] [--noise-z Z] [--text-router-free|--text-router-keeps-decoupling] [--no-router-validation]
//                      [--router-objective denoise|paper] [--align-weight W] [--noise-weight W] [--decoupling-weight W (0 = off)] [--router-unvalidated uniform|trained] [--decoupling-slack X]  (C++ trainer options)
//                      [--gemm-rate] [--alpha-sweep]
// --alpha-sweep (diagnostic): each routed modality's router alone at alpha 0.25 / 0.5 / 1 (others uniform), scored
// on the true tuples (use with --no-router-validation to see the trained routers unshrunk).
// The C++ side also reports its projector / router stage times and the projector stage's GEMM GFLOP/s; --gemm-rate
// adds this machine's one-thread rate for the projector step's GEMMs at the world's shapes (measured after training).
// Prints one JSON object (per world and summary); --markdown also writes the summary table, --jsonl appends each
// world's result as it finishes. bench/python/world_family_summary.py re-summarises JSONL files (several partial runs).
#include <ATen/ATen.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/evaluation/class_precision.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"
#include "omnibind/training/world_family.h"
#include "gemm_rate.h"
#include "python_baseline.h"

using namespace omnibind;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const std::vector<std::pair<std::string, std::string>> kPairs = {{"audio", "text"},  {"image", "text"},  {"point", "text"},
                                                                 {"audio", "image"}, {"image", "point"}, {"audio", "point"}};

struct Times {
  double wall = 0, user = 0, sys = 0;
};
double tv(const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); }
// Wall, user and sys seconds of f (this process, or its children when `children`).
template <class F>
Times timed(bool children, F&& f) {
  rusage r0{}, r1{};
  getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &r0);
  auto t0 = Clock::now();
  f();
  Times t;
  t.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &r1);
  t.user = tv(r1.ru_utime) - tv(r0.ru_utime);
  t.sys = tv(r1.ru_stime) - tv(r0.ru_stime);
  return t;
}
json times_json(const Times& t) { return {{"wall", t.wall}, {"user", t.user}, {"sys", t.sys}}; }
Times now_times() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return {std::chrono::duration<double>(Clock::now().time_since_epoch()).count(), tv(r.ru_utime), tv(r.ru_stime)};
}
Times minus(const Times& a, const Times& b) { return {a.wall - b.wall, a.user - b.user, a.sys - b.sys}; }

// The projector stage's GEMM FLOPs of a world (every trained space's K heads over its pairs, every epoch).
double projector_flops(const training::EmbeddingPool& pool, const binding::BindingConfig& config, int64_t T, int epochs, int64_t batch) {
  std::vector<const binding::ExpertSpec*> spaces = config.projected_experts();
  if (const auto* ib = config.find(binding::BindingConfig::kImageBind)) spaces.push_back(ib);
  const double H = static_cast<double>(config.projector_hidden), D = static_cast<double>(pool.dim(config.backbone));
  double f = 0;
  for (const auto* s : spaces) {
    int64_t mods = 0;
    for (const auto& m : s->modalities) mods += pool.has(m, s->name) ? 1 : 0;
    const int64_t N = T * mods;
    for (int64_t b = 0; b + 1 < N; b += batch)
      f += static_cast<double>(config.heads_per_space) * epochs *
           bench::projector_step_flops(static_cast<double>(std::min(batch, N - b)), static_cast<double>(pool.dim(s->name)), H, D);
  }
  return f;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string s;
  std::getline(f, s);
  return s;
}

// Per pair: learned, uniform, best single space of the C++ model on the evaluation set.
json evaluate_cpp(const evaluation::EvalSet& set, const binding::OmniBindModel& model) {
  std::map<std::string, at::Tensor> learned, uniform;
  for (const auto& m : model.modalities()) {
    auto it = set.modalities.find(m);
    if (it == set.modalities.end()) continue;
    learned[m] = evaluation::embed_unified(model, m, it->second.experts, evaluation::Routing::Learned);
    uniform[m] = evaluation::embed_unified(model, m, it->second.experts, evaluation::Routing::Uniform);
  }
  json out = json::object();
  for (const auto& [x, y] : kPairs) {
    if (!set.modalities.count(x) || !set.modalities.count(y)) continue;
    const auto &a = set.modalities.at(x), &b = set.modalities.at(y);
    json r;
    if (learned.count(x) && learned.count(y)) {
      r["learned"] = evaluation::class_precision_at_1(learned[x], a.label, learned[y], b.label);
      r["uniform"] = evaluation::class_precision_at_1(uniform[x], a.label, uniform[y], b.label);
    }
    double best = -1;
    std::string best_name;
    for (const auto& [name, rows] : a.experts)
      if (b.experts.count(name)) {
        const double p = evaluation::class_precision_at_1(rows, a.label, b.experts.at(name), b.label);
        if (p > best) best = p, best_name = name;
      }
    if (best >= 0) {
      r["best_single"] = best;
      r["best_single_space"] = best_name;
    }
    out[x + "-" + y] = r;
  }
  return out;
}

double pair_mean(const json& pairs, const char* kind) {
  double s = 0;
  int n = 0;
  for (const auto& [k, r] : pairs.items())
    if (r.contains(kind)) s += r[kind].get<double>(), ++n;
  return n ? s / n : std::nan("");
}

// Diagnostic (--alpha-sweep): what each modality's router alone is worth on the true tuples. For every routed
// modality m and alpha in {0.25, 0.5, 1}: m's router last layer x alpha, every other router x 0 (uniform), the
// world's mean class-level P@1 over pairs minus uniform routing's. Tells a router that truly helps from one
// validation merely prefers.
json alpha_sweep(const training::NamedTensors& state, const binding::BindingConfig& config, const evaluation::EvalSet& set,
                 double mean_uniform) {
  json out = json::object();
  for (const auto& m : binding::all_modalities()) {
    const std::string prefix = binding::router_prefix(m);
    bool routed = false;
    for (const auto& [n, t] : state) routed = routed || n.rfind(prefix, 0) == 0;
    if (!routed) continue;
    for (double a : {0.25, 0.5, 1.0}) {
      training::NamedTensors scaled;
      for (const auto& [n, t] : state) {
        const bool last = n.size() > 8 && (n.compare(n.size() - 8, 8, "6.weight") == 0 || n.compare(n.size() - 6, 6, "6.bias") == 0);
        const bool router = n.find("_enc_router.router.") != std::string::npos;
        if (router && last) scaled.emplace_back(n, t * (n.rfind(prefix, 0) == 0 ? a : 0.0));
        else scaled.emplace_back(n, t);
      }
      auto model = training::load_trained_model(scaled, config);
      const json pairs = evaluate_cpp(set, model);
      json r;
      r["gain"] = pair_mean(pairs, "learned") - mean_uniform;
      for (const auto& [k, v] : pairs.items())
        if (v.contains("learned")) r["pairs"][k] = v["learned"].get<double>() - v["uniform"].get<double>();
      out[m][std::to_string(a).substr(0, 4)] = r;
    }
  }
  return out;
}

// Summary of one implementation over the worlds: per pair means, and the per-world mean over pairs.
json summarise(const std::vector<json>& worlds, const std::string& impl) {
  json s;
  json per_pair = json::object();
  for (const auto& [x, y] : kPairs) {
    const std::string key = x + "-" + y;
    double sl = 0, su = 0, sb = 0, worst_gain = 1e9;
    int n = 0, nb = 0, wins = 0;
    int64_t worst = -1;
    for (const auto& w : worlds) {
      if (!w.contains(impl) || !w[impl].contains("pairs") || !w[impl]["pairs"].contains(key)) continue;
      const json& r = w[impl]["pairs"][key];
      if (!r.contains("learned")) continue;
      const double l = r["learned"].get<double>(), u = r["uniform"].get<double>();
      sl += l, su += u, ++n;
      if (l > u) ++wins;
      if (l - u < worst_gain) worst_gain = l - u, worst = w["index"].get<int64_t>();
      if (r.contains("best_single")) sb += r["best_single"].get<double>(), ++nb;
    }
    if (!n) continue;
    json p{{"worlds", n}, {"learned", sl / n}, {"uniform", su / n}, {"learned_beats_uniform", wins}, {"worst_gain", worst_gain},
           {"worst_world", worst}};
    p["best_single"] = nb ? json(sb / nb) : json(nullptr);
    p["worlds_with_single"] = nb;
    per_pair[key] = p;
  }
  s["per_pair"] = per_pair;
  double gain = 0, worst_gain = 1e9, learned = 0, uniform = 0, seconds = 0;
  int n = 0, wins = 0, within = 0;
  int64_t worst = -1;
  for (const auto& w : worlds) {
    if (!w.contains(impl) || !w[impl].contains("mean_learned")) continue;
    const double l = w[impl]["mean_learned"].get<double>(), u = w[impl]["mean_uniform"].get<double>();
    learned += l, uniform += u, gain += l - u, ++n;
    seconds += w[impl]["seconds_train"].get<double>();
    if (l > u) ++wins;
    if (l >= u - 0.01) ++within;
    if (l - u < worst_gain) worst_gain = l - u, worst = w["index"].get<int64_t>();
  }
  if (n) {
    s["worlds"] = n;
    s["mean_learned"] = learned / n;
    s["mean_uniform"] = uniform / n;
    s["mean_gain"] = gain / n;
    s["worst_gain"] = worst_gain;
    s["worst_world"] = worst;
    s["learned_beats_uniform"] = wins;
    s["learned_within_0.01_of_uniform"] = within;
    s["seconds_train_total"] = seconds;
  }
  return s;
}

std::string fmt(const json& v) {
  if (!v.is_number()) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v.get<double>());
  return b;
}

std::string markdown(const json& out) {
  std::string md = "| class-level precision@1 (mean over worlds) |";
  for (const auto& [x, y] : kPairs) md += " " + x + "-" + y + " |";
  md += "\n|---|";
  for (size_t i = 0; i < kPairs.size(); ++i) md += "---|";
  md += "\n";
  auto row = [&](const std::string& name, const json& s, const char* kind) {
    md += "| " + name + " |";
    for (const auto& [x, y] : kPairs) {
      const std::string key = x + "-" + y;
      md += " " + (s["per_pair"].contains(key) ? fmt(s["per_pair"][key][kind]) : std::string("-")) + " |";
    }
    md += "\n";
  };
  const json& c = out["summary"]["cpp"];
  const json& p = out["summary"]["pytorch"];
  if (c.contains("per_pair")) row("best single space", c, "best_single");
  else if (p.contains("per_pair")) row("best single space", p, "best_single");
  if (c.contains("per_pair")) row("C++ trainer, uniform routing", c, "uniform"), row("C++ trainer, learned routing", c, "learned");
  if (p.contains("per_pair")) row("PyTorch baseline, uniform routing", p, "uniform"), row("PyTorch baseline, learned routing", p, "learned");
  md += "\n| implementation | worlds | mean learned | mean uniform | mean gain | worst world (gain) | learned > uniform | learned >= uniform - 0.01 | train s (sum) |\n";
  md += "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& [name, s] : {std::pair<std::string, const json&>{"C++ trainer", c}, {"PyTorch baseline", p}}) {
    if (!s.contains("worlds")) continue;
    char b[512];
    std::snprintf(b, sizeof b, "| %s | %d | %.3f | %.3f | %+.3f | %lld (%+.3f) | %d | %d | %.0f |\n", name.c_str(), s["worlds"].get<int>(),
                  s["mean_learned"].get<double>(), s["mean_uniform"].get<double>(), s["mean_gain"].get<double>(),
                  static_cast<long long>(s["worst_world"].get<int64_t>()), s["worst_gain"].get<double>(), s["learned_beats_uniform"].get<int>(),
                  s["learned_within_0.01_of_uniform"].get<int>(), s["seconds_train_total"].get<double>());
    md += b;
  }
  return md;
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  int64_t worlds = training::kHeldOutWorlds, first = 0;
  std::string split = "heldout", dir = (fs::temp_directory_path() / "omnibind_bench_world_family").string(), md_path, jsonl_path;
  int threads = 2, epochs = 0;
  uint64_t seed = 1;
  double rows_scale = 1.0;
  training::TrainOptions defaults;  // the head-target options below are passed to both implementations
  std::string uncovered_target = defaults.uncovered_target, uncovered_pairs = defaults.uncovered_pairs;
  double uncovered_keep = defaults.uncovered_keep;
  int64_t min_steps = defaults.projector_min_steps;
  std::string router_validation_pairs = training::TrainOptions{}.router_validation_pairs;
  std::optional<bool> text_router_keeps_decoupling;
  std::string router_objective = "denoise";  // then the explicit overrides below
  std::optional<std::string> router_validation_metric;
  double min_gain = training::TrainOptions{}.router_min_gain;
  double noise_z = training::TrainOptions{}.router_noise_z;
  double router_validation = training::TrainOptions{}.router_validation;
  std::optional<double> align_weight, noise_weight, decoupling_weight;
  std::string router_unvalidated = training::TrainOptions{}.router_unvalidated;
  std::optional<double> decoupling_slack;
  bool python = true, cpp = true, gemm = false, sweep = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    std::string a = argv[i];
    if (a == "--worlds") worlds = std::stoll(next());
    else if (a == "--first") first = std::stoll(next());
    else if (a == "--split") split = next();
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--rows-scale") rows_scale = std::stod(next());
    else if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--uncovered-target") uncovered_target = next();
    else if (a == "--uncovered-pairs") uncovered_pairs = next();
    else if (a == "--uncovered-keep") uncovered_keep = std::stod(next());
    else if (a == "--min-steps") min_steps = std::stoll(next());
    else if (a == "--no-python") python = false;
    else if (a == "--no-cpp") cpp = false;
    else if (a == "--router-validation-pairs") router_validation_pairs = next();
    else if (a == "--text-router-free") text_router_keeps_decoupling = false;
    else if (a == "--text-router-keeps-decoupling") text_router_keeps_decoupling = true;
    else if (a == "--router-validation-metric") router_validation_metric = next();
    else if (a == "--min-gain") min_gain = std::stod(next());
    else if (a == "--noise-z") noise_z = std::stod(next());
    else if (a == "--no-router-validation") router_validation = 0;
    else if (a == "--gemm-rate") gemm = true;
    else if (a == "--alpha-sweep") sweep = true;
    else if (a == "--router-objective") router_objective = next();
    else if (a == "--align-weight") align_weight = std::stod(next());
    else if (a == "--noise-weight") noise_weight = std::stod(next());
    else if (a == "--decoupling-weight") decoupling_weight = std::stod(next());
    else if (a == "--router-unvalidated") router_unvalidated = next();
    else if (a == "--decoupling-slack") decoupling_slack = std::stod(next());
    else if (a == "--dir") dir = next();
    else if (a == "--markdown") md_path = next();
    else if (a == "--jsonl") jsonl_path = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const auto which = training::parse_world_split(split);
  tensor_io::set_compute_threads(threads);
  json out;
  out["bench"] = "world_family";
  out["split"] = split;
  out["threads"] = threads;
  out["seed"] = seed;
  out["rows_scale"] = rows_scale;
  out["epochs"] = epochs > 0 ? json(epochs) : json("default (8 projector, 8 router)");
  out["uncovered_target"] = uncovered_target;
  out["uncovered_pairs"] = uncovered_pairs;
  out["uncovered_keep"] = uncovered_keep;
  out["projector_min_steps"] = min_steps;
  out["loadavg_start"] = loadavg();
  out["router_validation"] = {{"share", router_validation}, {"pairs", router_validation_pairs}, {"text_router_keeps_decoupling", text_router_keeps_decoupling ? json(*text_router_keeps_decoupling) : json("(objective's)")}, {"objective", router_objective}, {"metric", router_validation_metric.value_or("(objective's)")}, {"min_gain", min_gain}, {"noise_z", noise_z}};
  std::vector<json> results;
  const int64_t n_split = which == training::WorldSplit::Tuning ? training::kTuningWorlds : training::kHeldOutWorlds;
  for (int64_t k = first; k < std::min(first + worlds, n_split); ++k) {
    training::WorldSpec spec = training::world_spec(which, k);
    if (rows_scale != 1.0) {  // smaller training pools; the evaluation tuples stay (evaluation is cheap, the metric less noisy)
      const int64_t eval_tuples = spec.eval_tuples;
      training::scale_world_rows(spec, rows_scale);
      spec.eval_tuples = eval_tuples;
    }
    const fs::path wdir = fs::path(dir) / (split + "-" + std::to_string(k));
    json w;
    w["index"] = k;
    w["seed"] = spec.seed;
    w["shape"] = spec.shape;
    w["classes"] = spec.classes;
    w["spaces"] = spec.spaces.size();
    w["heads_per_space"] = spec.config.heads_per_space;
    w["projector_hidden"] = spec.config.projector_hidden;
    w["routing_config"] = spec.config.backbone_in_output ? "every" : "base";
    auto files = training::write_world(spec, wdir);
    auto pool = training::EmbeddingPool::open(files.train);
    training::TupleSet tuples;
    nlohmann::json stats;
    w["seconds_mining"] = timed(false, [&] { tuples = training::mine_tuples(pool, {}, &stats); }).wall;
    w["tuples"] = tuples.size();
    const fs::path pairs = wdir / "pairs.safetensors";
    training::save_tuples(pairs, tuples, stats);
    if (stats.contains("purity")) w["mining_purity"] = stats["purity"];
    auto set = evaluation::load_eval_set(files.eval);
    std::fprintf(stderr, "world %s %lld (%s, %zu spaces, %lld classes, %lld tuples, %lld heads x %lld hidden): ", split.c_str(),
                 static_cast<long long>(k), spec.shape.c_str(), spec.spaces.size(), static_cast<long long>(spec.classes),
                 static_cast<long long>(tuples.size()), static_cast<long long>(spec.config.heads_per_space),
                 static_cast<long long>(spec.config.projector_hidden));
    if (cpp) {
      training::TrainOptions o;
      o.seed = seed;
      o.threads = threads;
      if (epochs > 0) o.projector_epochs = o.router_epochs = epochs;
      o.uncovered_target = uncovered_target;
      o.uncovered_pairs = uncovered_pairs;
      o.uncovered_keep = uncovered_keep;
      o.projector_min_steps = min_steps;
      training::set_router_objective(o, router_objective);  // then the explicit overrides
      o.router_validation_pairs = router_validation_pairs;
      if (text_router_keeps_decoupling) o.router_text_keeps_decoupling = *text_router_keeps_decoupling;
      o.router_min_gain = min_gain;
      o.router_noise_z = noise_z;
      o.router_validation = router_validation;
      if (router_validation_metric) o.router_validation_metric = *router_validation_metric;
      if (align_weight) o.router_align_weight = *align_weight;
      if (noise_weight) o.router_noise_weight = *noise_weight;
      if (decoupling_weight) o.decoupling_weight = *decoupling_weight, o.decoupling = *decoupling_weight > 0;
      o.router_unvalidated = router_unvalidated;
      if (decoupling_slack) o.router_decoupling_slack = *decoupling_slack;
      training::RouterValidationReport report;
      o.router_report = &report;
      // Stage split: the last projector progress report marks the end of the projector stage.
      Times start = now_times(), proj_end = start;
      o.progress = [&](const training::TrainProgress& p) {
        if (p.stage.rfind("projector", 0) == 0) proj_end = now_times();
      };
      training::NamedTensors state;
      Times t = timed(false, [&] { state = training::train_binding(pool, tuples, spec.config, o); });
      const Times end = now_times();
      auto model = training::load_trained_model(state, spec.config);
      json c;
      c["pairs"] = evaluate_cpp(set, model);
      c["mean_learned"] = pair_mean(c["pairs"], "learned");
      c["mean_uniform"] = pair_mean(c["pairs"], "uniform");
      c["mean_best_single"] = pair_mean(c["pairs"], "best_single");
      if (sweep) c["alpha_sweep"] = alpha_sweep(state, spec.config, set, c["mean_uniform"].get<double>());
      c["seconds_train"] = t.wall;
      c["router_validation"] = {{"held_out", report.held_out}, {"uniform", report.uniform_score}, {"best_epoch", report.best_epoch},
                                {"best", report.best_score}, {"final", report.final_score}, {"alpha", report.alpha}};
      c["times_train"] = times_json(t);
      c["times_projectors"] = times_json(minus(proj_end, start));
      c["times_routers"] = times_json(minus(end, proj_end));
      const double flops = projector_flops(pool, spec.config, tuples.size(), o.projector_epochs, o.batch);
      c["projector_gflop"] = flops / 1e9;
      c["projector_gflops_per_wall_s"] = flops / 1e9 / std::max(1e-9, proj_end.wall - start.wall);
      c["projector_gflops_per_cpu_s"] = flops / 1e9 / std::max(1e-9, proj_end.user + proj_end.sys - start.user - start.sys);
      if (gemm) {  // the step's GEMMs alone at this world's shapes (batch, median space width, H, D), 1 thread
        std::vector<int64_t> dims;
        for (const auto* sp : spec.config.projected_experts()) dims.push_back(pool.dim(sp->name));
        if (const auto* ib = spec.config.find(binding::BindingConfig::kImageBind)) dims.push_back(pool.dim(ib->name));
        std::sort(dims.begin(), dims.end());
        const int64_t d = dims[dims.size() / 2], H = spec.config.projector_hidden, D = pool.dim(spec.config.backbone);
        tensor_io::set_compute_threads(1);
        const double rate = bench::gemm_rate(o.batch, d, H, D, 100, 3);  // best of 3
        tensor_io::set_compute_threads(threads);
        c["gemm_rate_one_thread_gflops"] = rate;
        c["gemm_shapes"] = "batch " + std::to_string(o.batch) + ", d " + std::to_string(d) + ", H " + std::to_string(H) + ", D " + std::to_string(D);
        c["projector_fraction_of_gemm_rate"] = c["projector_gflops_per_cpu_s"].get<double>() / rate;
      }
      w["cpp"] = c;
      std::fprintf(stderr, "C++ %.1fs learned %.3f uniform %.3f; ", t.wall, c["mean_learned"].get<double>(), c["mean_uniform"].get<double>());
    }
    if (python) {
      std::string args = "--world " + wdir.string() + " --pairs " + pairs.string() + " --threads " + std::to_string(threads) +
                         " --seed " + std::to_string(seed) + " --uncovered-target " + uncovered_target + " --uncovered-pairs " +
                         uncovered_pairs + " --uncovered-keep " + std::to_string(uncovered_keep) + " --min-steps-proj " + std::to_string(min_steps);
      if (epochs > 0) args += " --epochs-proj " + std::to_string(epochs) + " --epochs-router " + std::to_string(epochs);
      nlohmann::json r;
      Times t = timed(true, [&] { r = bench::run_python_baseline("binding_baseline.py", args, threads); });
      if (r.is_null()) {
        w["pytorch"] = {{"error", "bench/python/binding_baseline.py failed (run it by hand: /usr/bin/python3 bench/python/binding_baseline.py " + args + ")"}};
        std::fprintf(stderr, "PyTorch failed");
      } else {
        json p = json::parse(r.dump());
        p["mean_learned"] = pair_mean(p["pairs"], "learned");
        p["mean_uniform"] = pair_mean(p["pairs"], "uniform");
        p["mean_best_single"] = pair_mean(p["pairs"], "best_single");
        p["times_process"] = times_json(t);
        w["pytorch"] = p;
        std::fprintf(stderr, "PyTorch %.1fs learned %.3f uniform %.3f", p["seconds_train"].get<double>(), p["mean_learned"].get<double>(),
                     p["mean_uniform"].get<double>());
      }
    }
    std::fprintf(stderr, "\n");
    w["loadavg"] = loadavg();
    results.push_back(w);
    if (!jsonl_path.empty()) {  // partial results survive a long run being stopped
      std::ofstream f(jsonl_path, std::ios::app);
      f << w.dump() << "\n";
    }
    // Keep the disk small: the world's files are rewritten on demand (same bytes).
    std::error_code ec;
    fs::remove_all(wdir, ec);
  }
  out["loadavg_end"] = loadavg();
  out["summary"] = {{"cpp", summarise(results, "cpp")}, {"pytorch", summarise(results, "pytorch")}};
  out["worlds"] = results;
  const std::string md = markdown(out);
  out["markdown"] = md;
  if (!md_path.empty()) write_bytes_atomically(md_path, md);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
