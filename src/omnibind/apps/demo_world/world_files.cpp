#include "omnibind/apps/demo_world/world_files.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"

namespace omnibind::apps {
namespace fs = std::filesystem;

std::vector<WorldItem> write_world_split(const WorldSpec& world, const fs::path& dir, const SplitSpec& split,
                                         const RenderOptions& render,
                                         const std::function<void(int64_t, int64_t)>& progress) {
  const fs::path root = fs::absolute(dir) / split.name;
  for (const char* m : {"audio", "image", "point"}) fs::create_directories(root / m);
  const int n_classes = static_cast<int>(world.classes.size());
  const int per_item = split.audio + split.image + split.point + split.text;
  const int64_t total = static_cast<int64_t>(n_classes) * split.instances_per_class * per_item;
  std::vector<WorldItem> items;
  items.reserve(static_cast<size_t>(total));
  const WorldRng base = WorldRng(world.seed).fork(0x5EED0000ull + split.salt);
  int64_t done = 0;
  for (int i = 0; i < split.instances_per_class; ++i)
    for (int c = 0; c < n_classes; ++c) {
      const ClassSpec& spec = world.classes[c];
      // One stream per (instance, class, modality): adding a modality never changes the others.
      const uint64_t key = (static_cast<uint64_t>(i) << 16) | static_cast<uint64_t>(c);
      const std::string stem = spec.name + "_" + std::to_string(i);
      if (split.audio) {
        WorldRng rng = base.fork(key * 4 + 0);
        WorldItem item{"audio", c, i, (root / "audio" / (stem + ".wav")).string(), "", -1};
        media::write_wav(item.path, synthesise_sound(spec, rng, render));
        items.push_back(std::move(item));
      }
      if (split.image) {
        WorldRng rng = base.fork(key * 4 + 1);
        WorldItem item{"image", c, i, (root / "image" / (stem + ".png")).string(), "", -1};
        media::write_png(item.path, render_look(spec, rng, render));
        items.push_back(std::move(item));
      }
      if (split.point) {
        WorldRng rng = base.fork(key * 4 + 2);
        WorldItem item{"point", c, i, (root / "point" / (stem + ".ply")).string(), "", -1};
        media::write_ply(item.path, sample_form(spec, rng, render));
        items.push_back(std::move(item));
      }
      if (split.text) {
        WorldRng rng = base.fork(key * 4 + 3);
        const auto source = static_cast<CaptionSource>(rng.below(3));
        items.push_back(WorldItem{"text", c, i, "", describe(spec, source, rng), static_cast<int>(source)});
      }
      done += per_item;
      if (progress) progress(done, total);
    }
  nlohmann::json listing = nlohmann::json::array();
  for (const auto& item : items)
    listing.push_back({{"modality", item.modality}, {"label", item.label}, {"instance", item.instance},
                       {"path", item.path}, {"text", item.text}, {"source", item.source}});
  write_bytes_atomically((fs::absolute(dir) / (split.name + ".json")).string(), listing.dump(1));
  return items;
}

std::vector<WorldItem> read_world_split(const fs::path& path) {
  nlohmann::json listing;
  try {
    listing = nlohmann::json::parse(read_file_bytes(path.string()));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string() + ": not a world listing (" + e.what() + ")");
  }
  if (!listing.is_array()) throw InputError(path.string() + ": a world listing is a JSON array");
  std::vector<WorldItem> items;
  for (size_t i = 0; i < listing.size(); ++i) {
    const auto& j = listing[i];
    try {
      items.push_back(WorldItem{j.at("modality").get<std::string>(), j.at("label").get<int>(),
                                j.at("instance").get<int64_t>(), j.value("path", ""), j.value("text", ""),
                                j.value("source", -1)});
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path.string() + ": item " + std::to_string(i) + " is malformed (" + e.what() + ")");
    }
  }
  return items;
}

}  // namespace omnibind::apps
