#include "omnibind/apps/demo/demo_pools.h"

#include <ATen/ATen.h>

#include <map>

#include "omnibind/apps/demo/demo_zoo.h"
#include "omnibind/apps/demo_world/world_rng.h"
#include "omnibind/common/error.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::apps {

at::Tensor embed_world_items(const DemoSpace& space, const std::vector<const WorldItem*>& items) {
  constexpr size_t kBatch = 256;
  std::vector<at::Tensor> parts;
  for (size_t b = 0; b < items.size(); b += kBatch) {
    std::vector<const WorldItem*> chunk(items.begin() + static_cast<std::ptrdiff_t>(b),
                                        items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), b + kBatch)));
    at::Tensor inputs = demo_zoo_inputs(space.expert.config, chunk);
    c10::InferenceMode guard;
    parts.push_back(space.model.forward(chunk.front()->modality, inputs));
  }
  return at::cat(parts);
}

std::vector<WorldItem> demo_captions(const WorldSpec& world, int per_class, uint64_t salt) {
  std::vector<WorldItem> texts;
  const WorldRng base = WorldRng(world.seed).fork(0xCA9710000ull + salt);
  for (int i = 0; i < per_class; ++i)
    for (int c = 0; c < static_cast<int>(world.classes.size()); ++c)
      for (int s = 0; s < 3; ++s) {
        WorldRng rng = base.fork((static_cast<uint64_t>(i) << 20) | (static_cast<uint64_t>(c) << 4) | static_cast<uint64_t>(s));
        texts.push_back(WorldItem{"text", c, i, "", describe(world.classes[c], static_cast<CaptionSource>(s), rng),
                                  s});
      }
  return texts;
}

void write_demo_pool(const std::filesystem::path& dir, const std::vector<DemoSpace>& spaces, const WorldSpec& world,
                     const std::vector<WorldItem>& items, const DemoPoolOptions& options) {
  training::PoolManifest manifest;
  for (const auto& s : spaces) manifest.experts.push_back({s.expert.key, s.expert.modalities, s.expert.config.dim});
  manifest.backbone = spaces.front().expert.key;
  for (const auto& c : world.classes) manifest.classes.push_back(c.name);
  training::PoolWriter writer(dir, manifest);
  const int64_t n_classes = static_cast<int64_t>(world.classes.size());
  for (const std::string m : {"audio", "image", "point", "text"}) {
    std::vector<const WorldItem*> selected;
    for (const auto& item : items)
      if (item.modality == m) selected.push_back(&item);
    if (selected.empty()) continue;
    std::map<std::string, at::Tensor> rows;
    for (const auto& s : spaces)
      if (s.expert.covers(m)) rows[s.expert.key] = embed_world_items(s, selected);
    require(!rows.empty(), "demo: no expert embeds " + m);
    std::vector<int64_t> label, source;
    for (const auto* item : selected) {
      label.push_back(item->label);
      source.push_back(item->source);
    }
    std::map<std::string, at::Tensor> columns{{"label", at::tensor(label, at::kLong)}};
    if (m == "text") columns["source"] = at::tensor(source, at::kLong);
    if (options.pairs) columns["pair"] = columns["label"];
    writer.add(m, rows, columns);
  }
  if (options.prompts) {
    std::vector<WorldItem> prompts;
    std::vector<int64_t> prompt_class;
    for (int c = 0; c < static_cast<int>(n_classes); ++c)
      for (const auto& p : class_prompts(world.classes[c].name)) {
        prompts.push_back(WorldItem{"text", c, -1, "", p, -1});
        prompt_class.push_back(c);
      }
    std::vector<const WorldItem*> ptrs;
    for (const auto& p : prompts) ptrs.push_back(&p);
    std::map<std::string, at::Tensor> rows;
    for (const auto& s : spaces)
      if (s.expert.covers("text")) rows[s.expert.key] = embed_world_items(s, ptrs);
    writer.set_prompts(rows, at::tensor(prompt_class, at::kLong));
  }
  writer.finish();
}

}  // namespace omnibind::apps
