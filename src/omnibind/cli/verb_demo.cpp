// omnibind demo: a miniature OmniBind built end to end on a generated world (apps/demo/demo_run.h).
#include <cstdio>

#include "omnibind/apps/demo/demo_run.h"
#include "omnibind/cli/verb.h"

namespace omnibind::cli {
namespace {

VerbRun setup_demo(CLI::App& app) {
  auto o = std::make_shared<apps::DemoOptions>();
  auto out = std::make_shared<std::string>("demo-out");
  auto quiet = std::make_shared<bool>(false);
  app.add_option("--out", *out, "Output directory (a previous demo's output is replaced)")->capture_default_str();
  app.add_option("--size", o->size, "full (a few minutes on 2 cores) or small (seconds)")->capture_default_str();
  app.add_option("--seed", o->seed, "Seed: the same seed and --threads give the same world, models and numbers")
      ->capture_default_str();
  app.add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  app.add_flag("--quiet", *quiet, "No progress on stderr");
  return [o, out, quiet] {
    o->out = *out;
    o->command = "omnibind demo --out " + *out + " --size " + o->size + " --seed " + std::to_string(o->seed) +
                 (o->threads ? " --threads " + std::to_string(o->threads) : "");
    if (!*quiet) o->log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    const auto r = apps::run_demo(*o);
    std::printf("%s\n", r.table.to_markdown().c_str());
    std::printf("any-to-any queries: %lld of %lld results of the right class\n", static_cast<long long>(r.query_hits_right),
                static_cast<long long>(r.query_hits));
    std::printf("report: %s\nbundle: %s (try: omnibind search %s --model %s --text \"a red circle\")\n", r.report.c_str(),
                r.bundle.c_str(), r.index.c_str(), r.bundle.c_str());
    std::printf("done in %.0f s\n", r.seconds);
    return 0;
  };
}

}  // namespace

REGISTER_VERB("demo", "Build a miniature OmniBind end to end on a generated world: experts, binding, evaluation, search, report",
              setup_demo);

}  // namespace omnibind::cli
