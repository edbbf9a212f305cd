// Writes a split of the demo world to disk as real media files (PNG, WAV, PLY) and captions, and
// lists them in DIR/<split>.json, so the media decoders and the experts' preprocessing run on them
// exactly as on user files.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/apps/demo_world/world_media.h"

namespace omnibind::apps {

struct WorldItem {
  std::string modality;   // audio | image | point | text
  int label = -1;         // class index
  int64_t instance = -1;  // items of one class with the same instance are one thing seen/heard/shaped/described
  std::string path;       // media file (absolute) — empty for text
  std::string text;       // caption — text only
  int source = -1;        // text: 0 sound, 1 look, 2 shape (CaptionSource)
};

struct SplitSpec {
  std::string name;       // "train", "eval", ...: files go to DIR/<name>/<modality>/
  int instances_per_class = 10;
  bool audio = true, image = true, point = true, text = true;
  uint64_t salt = 0;      // distinct per split so splits never share an instance
};

// Generates every item of the split (deterministic in world.seed and split.salt) and writes
// DIR/<split>.json listing them. progress(done, total) is called as files are written.
std::vector<WorldItem> write_world_split(const WorldSpec& world, const std::filesystem::path& dir,
                                         const SplitSpec& split, const RenderOptions& render = {},
                                         const std::function<void(int64_t, int64_t)>& progress = {});

// Reads a listing written by write_world_split (InputError naming the file on malformed content).
std::vector<WorldItem> read_world_split(const std::filesystem::path& listing);

}  // namespace omnibind::apps
