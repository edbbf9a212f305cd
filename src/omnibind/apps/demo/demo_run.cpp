#include "omnibind/apps/demo/demo_run.h"


#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "omnibind/apps/demo/demo_binding.h"
#include "omnibind/apps/demo/demo_lineup.h"
#include "omnibind/apps/demo/demo_locate.h"
#include "omnibind/apps/demo/demo_pools.h"
#include "omnibind/apps/demo/demo_report.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/apps/demo/demo_search.h"
#include "omnibind/apps/demo/demo_zoo.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::apps {
namespace fs = std::filesystem;

namespace {

constexpr const char* kDoneFile = "demo.json";

using Clock = std::chrono::steady_clock;

// Refuses to clobber a directory the demo did not write; clears a previous demo's output.
void prepare_out_dir(const fs::path& out) {
  if (fs::exists(out)) {
    if (!fs::is_directory(out)) throw InputError("--out " + out.string() + ": exists and is not a directory");
    const bool empty = fs::directory_iterator(out) == fs::directory_iterator();
    const bool previous = fs::exists(out / kDoneFile) || fs::exists(out / "world");
    if (!empty && !previous)
      throw InputError("--out " + out.string() + ": exists and is not a demo output; choose another directory");
    for (const auto& entry : fs::directory_iterator(out)) fs::remove_all(entry.path());
  }
  fs::create_directories(out);
}

}  // namespace

DemoResult run_demo(const DemoOptions& o) {
  const DemoScale scale = demo_scale(o.size);
  const fs::path out = fs::absolute(o.out);
  prepare_out_dir(out);
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  tensor_io::set_compute_threads(threads);

  const auto start = Clock::now();
  auto stage_start = start;
  std::vector<std::pair<std::string, double>> timings;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  auto log = [&](const std::string& line) {
    if (!o.log) return;
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "[%6.1fs] ", elapsed());
    o.log(prefix + line);
  };
  auto finish_stage = [&](const std::string& name) {
    const auto now = Clock::now();
    timings.emplace_back(name, std::chrono::duration<double>(now - stage_start).count());
    stage_start = now;
  };

  // 1. The world, written as real files: paired data for the experts, unpaired pools, held-out tuples.
  const WorldSpec world = make_world_spec(scale.classes, o.seed);
  log("world: " + std::to_string(world.classes.size()) + " classes, writing images, sounds, 3D shapes");
  const fs::path world_dir = out / "world";
  auto paired = write_world_split(world, world_dir, {"paired", scale.paired_instances, true, true, true, false, 1});
  std::vector<WorldItem> pool_items;
  for (auto [name, salt] : {std::pair{"pool_audio", 2}, {"pool_image", 3}, {"pool_point", 4}}) {
    SplitSpec s{name, scale.pool_instances, false, false, false, false, static_cast<uint64_t>(salt)};
    if (salt == 2) s.audio = true;
    if (salt == 3) s.image = true;
    if (salt == 4) s.point = true;
    auto items = write_world_split(world, world_dir, s);
    pool_items.insert(pool_items.end(), items.begin(), items.end());
  }
  for (auto& t : demo_captions(world, scale.pool_instances, 5)) pool_items.push_back(std::move(t));
  auto eval_items = write_world_split(world, world_dir, {"eval", scale.eval_instances, true, true, true, true, 6});
  log("world: " + std::to_string(paired.size()) + " paired, " + std::to_string(pool_items.size()) + " unpaired, " +
      std::to_string(eval_items.size()) + " held-out items");
  finish_stage("generate the world");

  // 2. The expert spaces, each trained on its own share of the paired data.
  std::vector<DemoSpace> spaces;
  for (const auto& e : demo_lineup(scale.classes)) {
    DemoZooTraining training;
    training.epochs = scale.zoo_epochs;
    training.seed = o.seed;
    training.progress = [&](int epoch, int epochs, double loss) {
      if (epoch == epochs || epoch % 4 == 0)
        log("expert " + e.key + " (" + e.like + "): epoch " + std::to_string(epoch) + "/" + std::to_string(epochs) +
            ", loss " + std::to_string(loss).substr(0, 5));
    };
    auto weights = train_demo_expert(e, world, paired, training);
    auto model = experts::zoo::ZooModel::bind(e.config, weights, e.key);
    spaces.push_back({e, std::move(weights), std::move(model)});
  }
  finish_stage("train 4 expert spaces");

  // 3. Unpaired pools for binding, held-out tuples for evaluation.
  log("embedding the unpaired pools and the held-out set with every expert");
  const fs::path train_pool = out / "pools" / "train", eval_pool = out / "pools" / "eval";
  fs::create_directories(out / "pools");
  write_demo_pool(train_pool, spaces, world, pool_items, {false, false});
  write_demo_pool(eval_pool, spaces, world, eval_items, {true, true});
  finish_stage("embed pools");

  // 4. Binding: tuples, heads, routers.
  const auto config = demo_binding_config(spaces, scale);
  double last_logged = -1;
  std::string last_stage;
  auto binding = bind_demo_spaces(train_pool, out / "heads.safetensors", config, scale, o.seed, threads,
                                  [&](const std::string& stage, double f) {
                                    const std::string head = stage.substr(0, stage.find(' '));
                                    if (stage.rfind("mining", 0) == 0 ? head != last_stage : f - last_logged >= 0.2) {
                                      log("binding: " + stage + " (" + std::to_string(static_cast<int>(100 * f)) + "%)");
                                      last_logged = f;
                                      last_stage = head;
                                    }
                                  });
  log("binding: " + std::to_string(binding.tuples) + " pseudo tuples");
  finish_stage("bind (mine tuples, train heads and routers)");

  // 5. Evaluation.
  const auto eval = evaluation::load_eval_set(eval_pool);
  DemoResult result;
  result.table = evaluate_demo(eval, *binding.model);
  evaluation::write_eval_table(result.table, (out / "table.json").string(), (out / "table.md").string());
  finish_stage("evaluate");
  if (const auto* learned = result.table.find("learned routing"))
    log("evaluation: learned routing composite " + std::to_string(100 * result.table.composite(*learned)).substr(0, 5));

  // 6. The bundle, the index and a few any-to-any queries through it.
  log("writing the model bundle and indexing the held-out items through it");
  write_demo_bundle(out, spaces, config, out / "heads.safetensors");
  const auto bundle = pipeline::ModelBundle::load(out / "bundle");
  const auto queries = index_and_query(out / "index", bundle, world, eval_items);
  for (const auto& q : queries)
    for (const auto& h : q.hits) {
      ++result.query_hits;
      result.query_hits_right += h.item->label == q.expected_label;
    }
  const auto compositions = compose_examples(out / "index", bundle, world, eval_items);
  for (const auto& e : compositions) {
    result.composed_hits += static_cast<int64_t>(e.hits.size());
    result.composed_hits_right += e.right;
  }
  finish_stage("bundle, index, queries and composed queries");

  // 6b. Localisation with known answers: scenes of several objects, one query per object and modality.
  LocateEvalOptions locate_options;
  locate_options.scenes = scale.locate_scenes;
  locate_options.seed = o.seed;
  locate_options.log = log;
  const auto localisation = evaluate_localisation(bundle, world, locate_options);
  write_bytes_atomically((out / "locate.json").string(), localisation.to_json().dump(2));
  if (const auto* u = localisation.find("OmniBind (unified space)"))
    for (const auto& [m, s] : u->by_modality)
      log("localisation: " + m + " pointing " + std::to_string(100 * s.pointing).substr(0, 4) + "%, IoU>=0.5 " +
          std::to_string(100 * s.iou50).substr(0, 4) + "%");
  finish_stage("localisation scenes");

  // 7. The report, then demo.json (its presence says the run finished).
  DemoReport report{&world, &spaces, &result.table, &eval, binding.model.get(), &queries, timings, o.command};
  report.compositions = &compositions;
  report.localisation_html = render_locate_section(localisation);
  write_bytes_atomically((out / "report.html").string(), render_demo_report(report));
  result.report = out / "report.html";
  result.bundle = out / "bundle";
  result.index = out / "index";
  result.seconds = elapsed();
  nlohmann::json done{{"format", "omnibind-demo"}, {"size", scale.name}, {"seed", o.seed}, {"threads", threads},
                      {"seconds", result.seconds}, {"tuples", binding.tuples}, {"mining", binding.mining_stats},
                      {"query_hits", result.query_hits}, {"query_hits_right", result.query_hits_right},
                      {"composed_hits", result.composed_hits}, {"composed_hits_right", result.composed_hits_right}};
  for (const auto& row : result.table.rows) done["composite"][row.name] = result.table.composite(row);
  if (const auto* u = localisation.find("OmniBind (unified space)"))
    for (const auto& [m, s] : u->by_modality) done["localisation"][m] = {{"pointing", s.pointing}, {"iou50", s.iou50}};
  write_bytes_atomically((out / kDoneFile).string(), done.dump(2));
  log("report: " + result.report.string());
  return result;
}

}  // namespace omnibind::apps
