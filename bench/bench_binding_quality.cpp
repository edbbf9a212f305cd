// Binding quality on synthetic expert spaces (issue 3 item 6), at a larger size than the tests:
// builds the synthetic world (evaluation/synthetic_world.h), writes it as pools, mines tuples and trains
// with the training layer, evaluates single experts vs uniform vs learned routing (and with --ablations the
// four ablation variants), and prints one JSON object with both tables, the composite metrics and timings.
//   bench_binding_quality [--train-rows N] [--eval-tuples N] [--classes C] [--seed S] [--threads T]
//                         [--epochs E] [--ablations] [--dir DIR] [--markdown FILE]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/evaluation/ablations.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/evaluation/synthetic_world.h"

using namespace omnibind;
using namespace omnibind::evaluation;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  SyntheticWorldOptions o;
  o.train_rows = 20000;
  o.eval_tuples = 2000;
  o.classes = 32;
  int threads = 0, epochs = 0;
  bool ablations = false;
  std::string dir = (std::filesystem::temp_directory_path() / "omnibind_bench_binding_quality").string(), markdown;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    std::string a = argv[i];
    if (a == "--train-rows") o.train_rows = std::stoll(next());
    else if (a == "--eval-tuples") o.eval_tuples = std::stoll(next());
    else if (a == "--classes") o.classes = std::stoll(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--ablations") ablations = true;
    else if (a == "--dir") dir = next();
    else if (a == "--markdown") markdown = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  nlohmann::ordered_json out;
  out["bench"] = "binding_quality";
  out["world"] = {{"train_rows_per_modality", o.train_rows}, {"eval_tuples", o.eval_tuples}, {"classes", o.classes},
                  {"seed", o.seed}, {"threads", at::get_num_threads()}};
  auto t0 = Clock::now();
  SyntheticWorld w = make_synthetic_world(o);
  write_synthetic_pools(w, dir + "/train", dir + "/eval");
  out["seconds_world"] = seconds(t0);
  auto pool = training::EmbeddingPool::open(dir + "/train");
  EvalSet eval = load_eval_set(dir + "/eval");
  auto cfg = w.binding_config(7, 128);
  training::TrainOptions train;
  train.seed = o.seed;
  train.threads = threads;
  if (epochs > 0) train.projector_epochs = train.router_epochs = epochs;

  t0 = Clock::now();
  auto tuples = training::mine_tuples(pool, {});
  out["seconds_mining"] = seconds(t0);
  t0 = Clock::now();
  auto model = train_model(pool, tuples, cfg, train);
  out["seconds_training"] = seconds(t0);
  t0 = Clock::now();
  EvalTable table = evaluate_binding(eval, model);
  out["seconds_eval"] = seconds(t0);
  table.title = "Synthetic expert spaces: single experts vs uniform vs learned routing";
  nlohmann::ordered_json composite;
  for (auto& r : table.rows) composite[r.name] = table.composite(r);
  out["composite"] = composite;
  const EvalRow* learned = table.find("learned routing");
  if (learned && learned->retrieval.count("audio->point")) {
    auto& r = learned->retrieval.at("audio->point");
    out["audio_to_point"] = {{"R@1", r.r1}, {"R@5", r.r5}, {"R@10", r.r10}, {"chance_R@10", 10.0 / double(o.eval_tuples)}};
  }
  out["table"] = nlohmann::ordered_json::parse(table.to_json());
  std::string md = table.to_markdown();
  if (ablations) {
    AblationOptions ab;
    ab.train = train;
    ab.progress = [](const std::string& s) { std::fprintf(stderr, "ablations: %s\n", s.c_str()); };
    t0 = Clock::now();
    EvalTable at = run_ablations(pool, eval, cfg, ab);
    out["seconds_ablations"] = seconds(t0);
    nlohmann::ordered_json ac;
    for (auto& r : at.rows) ac[r.name] = at.composite(r);
    out["ablation_composite"] = ac;
    out["ablations"] = nlohmann::ordered_json::parse(at.to_json());
    md += "\n" + at.to_markdown();
  }
  if (!markdown.empty()) write_bytes_atomically(markdown, md);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
