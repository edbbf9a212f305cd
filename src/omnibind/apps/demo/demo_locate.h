// Localisation with known answers on the demo world (issue 18): scenes with several objects at known
// positions (demo_world/world_scene.h), one query per object and modality (a caption about its look,
// a sound, a 3-D shape, another picture of it), each located through a bundle's image pathway
// (retrieval/localisation.h). Scored per query modality: pointing accuracy (the heatmap's maximum
// inside the true box) and IoU@0.5 of the best box, for the unified space, for each single expert
// space alone (its own query and region embeddings), and for chance.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/apps/demo_world/world_scene.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/media/image.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/retrieval/localisation.h"

namespace omnibind::apps {

struct LocateScore {
  int64_t queries = 0;
  double pointing = 0;  // share of queries whose heatmap maximum lies inside the true box
  double iou50 = 0;     // share whose best box has IoU >= 0.5 with the true box
  double mean_iou = 0;  // mean IoU of the best box
};

struct LocateRow {
  std::string name;  // "OmniBind (unified space)", "OmniBind, plain sliding windows", "IT alone", "chance"
  std::string kind;  // "unified" | "baseline" (the plain method on the unified space) | "space" | "chance"
  std::map<std::string, LocateScore> by_modality;  // audio | image | point | text (absent: not covered)
};

struct LocateExample {
  std::string title;      // "scene 1: text 'a red striped circle' -> lantern"
  std::string modality;
  media::Image overlay;   // heat + boxes + peak, with the true box outlined
  bool pointed = false, hit = false;
};

struct LocateEvaluation {
  int scenes = 0, objects_per_scene = 0;
  int64_t regions = 0;             // windows embedded in all
  double embed_seconds = 0;        // embedding the regions of every scene
  double locate_seconds = 0;       // every locate() call (heat + boxes) together
  int64_t locate_calls = 0;
  retrieval::RegionGrid grid;
  std::vector<LocateRow> rows;     // unified, the plain-method baseline, each single space, chance
  std::vector<LocateExample> examples;
  const LocateRow* find(const std::string& name) const;
  nlohmann::json to_json() const;
};

struct LocateEvalOptions {
  int scenes = 12;
  uint64_t seed = 11;
  SceneOptions scene;
  retrieval::RegionGrid grid;
  retrieval::LocateOptions locate;
  int example_scenes = 2;          // scenes whose overlays go into the report
  std::function<void(const std::string&)> log;
};

LocateEvaluation evaluate_localisation(const pipeline::ModelBundle& bundle, const WorldSpec& world,
                                       const LocateEvalOptions& options = {});

// The report section (HTML, images inline): the table and the example overlays.
std::string render_locate_section(const LocateEvaluation& evaluation);

// A bundle shaped like the demo's (its lineup of zoo experts, binding config and heads) with untrained
// random weights: for tests and benchmarks that need a pixel-reading bundle in a second, not a good one.
void write_random_demo_bundle(const std::filesystem::path& dir, int classes, uint64_t seed);

}  // namespace omnibind::apps
