#include "omnibind/apps/demo/demo_zoo.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <map>

#include "omnibind/apps/demo_world/world_rng.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/training/zoo/zoo_trainer.h"

namespace omnibind::apps {
namespace zoo = experts::zoo;

at::Tensor demo_zoo_input(const zoo::ZooConfig& c, const WorldItem& item) {
  if (item.modality == "audio") return zoo::zoo_audio_input(media::decode_audio_file(item.path), *c.audio, item.path);
  if (item.modality == "image") return zoo::zoo_image_input(media::decode_image_file(item.path), *c.image, item.path);
  if (item.modality == "point") return zoo::zoo_point_input(media::read_point_cloud_file(item.path), *c.point, item.path);
  if (item.modality == "text") return zoo::zoo_text_input(item.text, *c.text);
  throw InputError("demo: unknown modality '" + item.modality + "'");
}

at::Tensor demo_zoo_inputs(const zoo::ZooConfig& c, const std::vector<const WorldItem*>& items) {
  require(!items.empty(), "demo: no items to embed");
  std::vector<at::Tensor> rows(items.size());
  // Decoding and fbank are independent per file: spread them over the intra-op threads.
  at::parallel_for(0, static_cast<int64_t>(items.size()), 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) rows[static_cast<size_t>(i)] = demo_zoo_input(c, *items[static_cast<size_t>(i)]);
  });
  return at::stack(rows);
}

zoo::ZooWeights train_demo_expert(const DemoExpert& e, const WorldSpec& world, const std::vector<WorldItem>& paired,
                                  const DemoZooTraining& options) {
  // One training example per (class, instance) of the paired split, with that instance's media.
  std::map<std::pair<int, int64_t>, std::map<std::string, const WorldItem*>> instances;
  for (const auto& item : paired)
    if (item.modality != "text" && e.covers(item.modality)) instances[{item.label, item.instance}][item.modality] = &item;
  const int n_classes = static_cast<int>(world.classes.size());
  WorldRng rng = WorldRng(options.seed).fork(std::hash<std::string>{}(e.key) & 0xFFFFFFFFull);
  std::map<std::string, std::vector<const WorldItem*>> media;
  std::vector<WorldItem> captions;  // owned here; pointers taken after it is filled
  std::vector<int64_t> groups;
  std::vector<const std::map<std::string, const WorldItem*>*> chosen;
  for (const auto& [key, by_modality] : instances) {
    const int label = key.first;
    const bool strong = std::find(e.strong_classes.begin(), e.strong_classes.end(), label) != e.strong_classes.end();
    WorldRng item_rng = rng.fork(static_cast<uint64_t>(key.second) * 131 + static_cast<uint64_t>(label));
    if (!strong && item_rng.uniform() >= e.weak_share) continue;
    int named = label;
    if (item_rng.uniform() < e.caption_noise) named = (label + 1 + item_rng.below(n_classes - 1)) % n_classes;
    const CaptionSource source = e.captions[static_cast<size_t>(item_rng.below(static_cast<int>(e.captions.size())))];
    captions.push_back(WorldItem{"text", named, key.second, "", describe(world.classes[named], source, item_rng, 0.1),
                                 static_cast<int>(source)});
    groups.push_back(label);
    chosen.push_back(&by_modality);
  }
  require(chosen.size() >= 2, "demo: expert " + e.key + " got fewer than 2 training examples");
  training::zoo::ZooPairedData data;
  for (const auto& m : e.modalities) {
    if (m == "text") {
      std::vector<const WorldItem*> texts;
      for (const auto& t : captions) texts.push_back(&t);
      data.inputs["text"] = demo_zoo_inputs(e.config, texts);
      continue;
    }
    std::vector<const WorldItem*> items;
    for (const auto* by_modality : chosen) {
      auto it = by_modality->find(m);
      require(it != by_modality->end(), "demo: the paired split lacks " + m + " items");
      items.push_back(it->second);
    }
    data.inputs[m] = demo_zoo_inputs(e.config, items);
  }
  data.group = at::tensor(groups, at::kLong);
  training::zoo::ZooTrainOptions o;
  o.epochs = options.epochs;
  o.batch = 64;
  o.lr = 2e-3;
  o.seed = options.seed;
  return training::zoo::train_zoo_expert(e.config, data, o, [&](const training::zoo::ZooTrainProgress& p) {
    if (options.progress) options.progress(static_cast<int>(p.epoch), static_cast<int>(p.epochs), p.loss);
  });
}

}  // namespace omnibind::apps
