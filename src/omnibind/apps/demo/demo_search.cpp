#include "omnibind/apps/demo/demo_search.h"

#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>

#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_expert.h"
#include "omnibind/retrieval/vector_index.h"

namespace omnibind::apps {
namespace fs = std::filesystem;

void write_demo_bundle(const fs::path& out, const std::vector<DemoSpace>& spaces, const binding::BindingConfig& config,
                       const fs::path& heads_path) {
  pipeline::BundleManifest manifest;
  manifest.binding = config;
  manifest.heads = "heads.safetensors";
  std::vector<pipeline::BundleFile> files{{"heads.safetensors", heads_path.string(), {}}};
  fs::create_directories(out / "experts");
  for (const auto& s : spaces) {
    const std::string relative = "experts/" + s.expert.key + ".safetensors";
    const fs::path path = out / relative;
    experts::zoo::write_zoo_file(path.string(), s.expert.config, s.weights, {{"demo_role", s.expert.like}});
    manifest.experts.push_back({s.expert.key, "zoo", relative, "", "", "", s.expert.modalities});
    files.push_back({relative, path.string(), {}});
  }
  pipeline::write_bundle(out / "bundle", manifest, files, /*overwrite=*/true);
}

namespace {

experts::MediaInput media_input(const WorldItem& item) {
  return item.modality == "text" ? experts::MediaInput::from_text(item.text) : experts::MediaInput::from_path(item.path);
}

// The first item of `modality` and class `label` (instance order), or nullptr.
const WorldItem* find_item(const std::vector<WorldItem>& items, const std::string& modality, int label) {
  for (const auto& item : items)
    if (item.modality == modality && item.label == label) return &item;
  return nullptr;
}

}  // namespace

std::vector<DemoQuery> index_and_query(const fs::path& index_dir, const pipeline::ModelBundle& bundle,
                                       const WorldSpec& world, const std::vector<WorldItem>& items, int k) {
  fs::remove_all(index_dir);
  retrieval::CreateOptions create;
  create.dim = bundle.dim();
  retrieval::VectorIndex::create(index_dir.string(), create);
  auto index = retrieval::VectorIndex::open(index_dir.string(), retrieval::VectorIndex::Mode::ReadWrite);
  std::map<int64_t, const WorldItem*> by_id;
  for (const std::string m : {"audio", "image", "point", "text"}) {
    std::vector<const WorldItem*> selected;
    std::vector<experts::MediaInput> inputs;
    std::vector<retrieval::ItemRecord> records;
    for (const auto& item : items)
      if (item.modality == m) {
        selected.push_back(&item);
        inputs.push_back(media_input(item));
        records.push_back({-1, m, item.modality == "text" ? item.text : item.path, {world.classes[item.label].name},
                           nlohmann::json{{"instance", item.instance}, {"class", item.label}}.dump()});
      }
    if (selected.empty()) continue;
    at::Tensor rows = bundle.embed(experts::parse_modality(m), inputs).contiguous();
    auto ids = index->add(records, rows.data_ptr<float>(), rows.size(0), /*measure_recall=*/false);
    for (size_t i = 0; i < ids.size(); ++i) by_id[ids[i]] = selected[i];
  }

  // Queries: one class per question, cycling through the world so the examples differ.
  const int n = static_cast<int>(world.classes.size());
  auto name = [&](int c) { return world.classes[c].name; };
  std::vector<DemoQuery> queries;
  auto ask = [&](std::string title, std::vector<const WorldItem*> add, const WorldItem* sub, std::string gallery, int label) {
    for (auto* a : add)
      if (!a) return;
    queries.push_back({std::move(title), std::move(add), sub, std::move(gallery), label, {}});
  };
  ask("the sound of a " + name(0) + " -> 3D shapes (audio and 3D were never paired)", {find_item(items, "audio", 0)},
      nullptr, "point", 0);
  ask("a 3D " + name(1 % n) + " -> sounds", {find_item(items, "point", 1 % n)}, nullptr, "audio", 1 % n);
  ask("a picture of a " + name(2 % n) + " -> sounds", {find_item(items, "image", 2 % n)}, nullptr, "audio", 2 % n);
  ask("the sound of a " + name(3 % n) + " -> pictures", {find_item(items, "audio", 3 % n)}, nullptr, "image", 3 % n);
  ask("a caption about a " + name(4 % n) + " -> everything", {find_item(items, "text", 4 % n)}, nullptr, "", 4 % n);
  ask("a picture of a " + name(5 % n) + " + the sound of a " + name(5 % n) + " -> 3D shapes",
      {find_item(items, "image", 5 % n), find_item(items, "audio", 5 % n)}, nullptr, "point", 5 % n);

  for (auto& q : queries) {
    std::vector<experts::MediaInput> none;
    at::Tensor v = at::zeros({bundle.dim()});
    retrieval::Filter filter;
    if (!q.gallery.empty()) filter.modalities = {q.gallery};
    auto embed_one = [&](const WorldItem* item) {
      return bundle.embed(experts::parse_modality(item->modality), {media_input(*item)})[0];
    };
    for (auto* a : q.add) v += embed_one(a);
    if (q.sub) v -= embed_one(q.sub);
    v = v / v.norm().clamp_min(1e-12);
    // Never return the query items themselves (they are indexed too).
    for (const auto& [id, item] : by_id)
      for (auto* a : q.add)
        if (item == a) filter.exclude.push_back(id);
    v = v.contiguous();
    for (const auto& hit : index->search(v.data_ptr<float>(), k, filter)) q.hits.push_back({by_id.at(hit.id), hit.score});
  }
  return queries;
}

}  // namespace omnibind::apps
