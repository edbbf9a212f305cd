// `omnibind demo`: the whole idea of OmniBind, end to end, on a generated world in a few minutes:
//   world -> zoo experts trained on paired data -> unpaired embedding pools -> pseudo tuples, heads,
//   routers -> evaluation table -> model bundle + index + any-to-any queries -> report.html
// Output directory layout (docs/DEMO.md): world/, experts/, pools/{train,eval}/, heads.safetensors,
// bundle/, index/, table.{md,json}, report.html, demo.json (written last: the run finished).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "omnibind/evaluation/eval_table.h"

namespace omnibind::apps {

struct DemoOptions {
  std::filesystem::path out = "demo-out";
  std::string size = "full";  // demo_scale.h
  uint64_t seed = 7;
  int threads = 0;            // 0 = all cores
  std::string command;        // the command line, recorded in the report
  std::function<void(const std::string& line)> log;  // progress lines
};

struct DemoResult {
  evaluation::EvalTable table;
  std::filesystem::path report, bundle, index;
  int64_t query_hits = 0, query_hits_right = 0;  // any-to-any query results of the right class
  int64_t composed_hits = 0, composed_hits_right = 0;  // composed query results that are right (demo_compose.h)
  double seconds = 0;
};

// InputError when `out` exists and is not a previous demo's output (a previous demo's is replaced).
DemoResult run_demo(const DemoOptions& options);

}  // namespace omnibind::apps
