// Composable understanding, worked on the demo's index: queries that add and subtract embeddings of
// several modalities (normalize(sum_i w_i * normalize(embed(item_i))), as /v1/search, /v1/locate and
// /v1/embeddings compose them), each with what a right answer is, answered from the index and
// measured (the share of the top-k that is right). Shown in the report's "Composable queries" section.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/apps/demo/demo_search.h"
#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/pipeline/model_bundle.h"

namespace omnibind::apps {

struct ComposePart {
  const WorldItem* item = nullptr;  // a world item (file or caption)...
  std::string text;                 // ...or a free text when item is null
  float weight = 1;
};

struct ComposeExample {
  std::string title;               // "a picture of a lantern + the sound of a kettle -> everything"
  std::string expectation;         // what a right answer is, in words
  std::vector<ComposePart> parts;
  std::string gallery;             // modality searched ("" = every modality)
  std::vector<int> right_labels;   // classes a right answer has
  bool need_every_label = false;   // right only when every right label shows up in the top-k
  std::vector<DemoHit> hits;
  int right = 0;                   // hits of a right label
  bool covered = false;            // every right label among the hits
};

// The examples, built from the world's attributes (e.g. two classes that look alike but for their
// colour give "this picture − 'a red circle' + 'a blue circle'"), answered from the index at
// `index_dir` (written by index_and_query over `items`). Query items are never returned.
std::vector<ComposeExample> compose_examples(const std::filesystem::path& index_dir, const pipeline::ModelBundle& bundle,
                                             const WorldSpec& world, const std::vector<WorldItem>& items, int k = 5);

// The report section (HTML); `preview` renders one world item.
std::string compose_section(const std::vector<ComposeExample>& examples, const WorldSpec& world,
                            const std::function<std::string(const WorldItem&)>& preview);

}  // namespace omnibind::apps
