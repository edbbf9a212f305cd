// What the demo leaves behind for `embed`, `search` and `serve`: a model bundle (the zoo experts + the
// trained heads/routers) and an index of the held-out world items embedded through that bundle from
// their files, plus a few any-to-any queries answered from the index.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "omnibind/apps/demo/demo_pools.h"
#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/binding/binding_config.h"
#include "omnibind/pipeline/model_bundle.h"

namespace omnibind::apps {

// Writes each space's zoo file to DIR/experts/<KEY>.safetensors and the bundle DIR/bundle (heads copied in).
void write_demo_bundle(const std::filesystem::path& out, const std::vector<DemoSpace>& spaces,
                       const binding::BindingConfig& config, const std::filesystem::path& heads_path);

struct DemoHit {
  const WorldItem* item = nullptr;
  float score = 0;
};

struct DemoQuery {
  std::string title;                  // "the sound of a lantern -> 3D shapes"
  std::vector<const WorldItem*> add;  // query items summed (unit embeddings)
  const WorldItem* sub = nullptr;     // optional item subtracted
  std::string gallery;                // modality searched ("" = every modality)
  int expected_label = -1;            // the class a right answer has
  std::vector<DemoHit> hits;
};

// Embeds `items` through the bundle (from their files/captions), builds DIR/index (exact inner product,
// labels = class names, metadata = instance) and answers the demo's queries (top-`k`).
std::vector<DemoQuery> index_and_query(const std::filesystem::path& index_dir, const pipeline::ModelBundle& bundle,
                                       const WorldSpec& world, const std::vector<WorldItem>& items, int k = 3);

}  // namespace omnibind::apps
