// omnibind world: writes member k of the synthetic world family (training/world_family.h) to a directory:
// DIR/train (unpaired pools), DIR/eval (true tuples + prompts), DIR/config.json (binding config for
// `omnibind train --config`), DIR/world.json (the world's structure). Tuning worlds are for tuning,
// held-out worlds only for reporting (docs/reference/world_family.md).
#include <cstdio>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/world_family.h"

namespace omnibind::cli {
namespace {

struct WorldCliOptions {
  std::string split = "tuning", out;
  int64_t index = 0;
  double rows_scale = 1.0;
  bool describe = false;
};

int run_world(const WorldCliOptions& o) {
  auto spec = training::world_spec(training::parse_world_split(o.split), o.index);
  if (o.rows_scale != 1.0) training::scale_world_rows(spec, o.rows_scale);
  if (o.describe || o.out.empty()) {
    std::printf("%s\n", training::world_spec_to_json(spec).c_str());
    if (o.out.empty()) return 0;
  }
  tensor_io::set_compute_threads(1);  // generation is small; keep it off the other cores
  auto files = training::write_world(spec, o.out);
  std::fprintf(stderr, "wrote %s world %lld (%s, %zu spaces, %lld classes): %s %s %s %s\n", spec.split.c_str(),
               static_cast<long long>(spec.index), spec.shape.c_str(), spec.spaces.size(), static_cast<long long>(spec.classes),
               files.train.c_str(), files.eval.c_str(), files.config.c_str(), files.description.c_str());
  return 0;
}

VerbRun setup_world(CLI::App& app) {
  auto o = std::make_shared<WorldCliOptions>();
  app.add_option("--split", o->split, "tuning (seeds 1000+k, k < 1000: tune on these) or heldout (seeds 900000+k, k < 24: report only)")
      ->capture_default_str();
  app.add_option("--index", o->index, "Member k of the split")->capture_default_str();
  app.add_option("--out", o->out, "Directory to write train/, eval/, config.json, world.json (absent: print world.json only)");
  app.add_option("--rows-scale", o->rows_scale, "Multiply every pool size and the evaluation tuple count (quick runs)")
      ->capture_default_str();
  app.add_flag("--describe", o->describe, "Also print the world's description (world.json) on stdout");
  return [o] { return run_world(*o); };
}

}  // namespace

REGISTER_VERB("world", "Write a member of the synthetic binding world family (pools, evaluation tuples, binding config)", setup_world);

}  // namespace omnibind::cli
