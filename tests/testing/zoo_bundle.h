// A tiny model bundle whose experts read real pixels, sounds, point clouds and texts: two untrained
// (seeded random) zoo experts and random official-layout heads. For tests of features that embed media
// through a bundle (localisation, servers) and need it in well under a second, not a good one.
// Header-only: link omnibind_pipeline (experts, binding).
#pragma once
#include <filesystem>
#include <string>

#include "omnibind/binding/every_expert_config.h"
#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/experts/zoo/zoo_expert.h"
#include "omnibind/experts/zoo/zoo_model.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::testkit {

// Writes DIR (a bundle: bundle.json, heads.safetensors, experts/{A,B}.safetensors). Space "A" embeds
// image/text/audio/point (the backbone), "B" image/text; images are read as 16x16 RGB.
inline void write_tiny_zoo_bundle(const std::filesystem::path& dir, uint64_t seed = 3) {
  namespace zoo = experts::zoo;
  auto small = [](zoo::ZooConfig c) {
    if (c.audio) c.audio->channels = {4, 8}, c.audio->hidden = 16, c.audio->frames = 16, c.audio->mel_bins = 16;
    if (c.image) c.image->size = 16, c.image->channels_in = 3, c.image->channels = {4, 8}, c.image->hidden = 16;
    if (c.point) c.point->points = 64, c.point->widths = {8, 16}, c.point->hidden = 16;
    if (c.text) c.text->buckets = 256, c.text->width = 16, c.text->hidden = 16;
    return c;
  };
  const auto a = small(zoo::default_zoo_config({"audio", "image", "point", "text"}, 16, "A"));
  const auto b = small(zoo::default_zoo_config({"image", "text"}, 12, "B"));
  const std::filesystem::path staging = dir.string() + ".parts";
  std::filesystem::create_directories(staging);
  pipeline::BundleManifest manifest;
  const auto config = binding::every_expert_config(
      "tiny-zoo", {{"A", {"audio", "image", "point", "text"}, 16, {}}, {"B", {"image", "text"}, 12, {}}}, "A", 2, 24, {12, 6});
  manifest.binding = config;
  manifest.heads = "heads.safetensors";
  std::vector<pipeline::BundleFile> files;
  const auto heads = staging / "heads.safetensors";
  tensor_io::write_tensors(heads.string(), pipeline::random_official_heads(config, {.seed = seed}));
  files.push_back({"heads.safetensors", heads.string(), {}});
  uint64_t k = 0;
  for (const auto* c : {&a, &b}) {
    const std::string rel = "experts/" + c->key + ".safetensors";
    const auto path = staging / (c->key + ".safetensors");
    zoo::write_zoo_file(path.string(), *c, zoo::init_zoo_weights(*c, seed + 100 * ++k));
    std::vector<std::string> modalities;
    if (c->audio) modalities.push_back("audio");
    if (c->image) modalities.push_back("image");
    if (c->point) modalities.push_back("point");
    if (c->text) modalities.push_back("text");
    manifest.experts.push_back({c->key, "zoo", rel, "", "", "", modalities});
    files.push_back({rel, path.string(), {}});
  }
  pipeline::write_bundle(dir, manifest, files, /*overwrite=*/true);
  std::filesystem::remove_all(staging);
}

}  // namespace omnibind::testkit
