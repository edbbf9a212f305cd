#include "omnibind/experts/clap/clap_draws.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::clap {
namespace {

void read_entry(const nlohmann::json& e, const char* chunks_key, const char* crop_key, preprocess::ClapDraws& d,
                const std::string& where) {
  if (e.contains(chunks_key) && !e[chunks_key].is_null()) {
    const auto& v = e[chunks_key];
    require(v.is_array() && v.size() == 3, where + ": '" + chunks_key + "' must be a list of 3 frame indices");
    std::array<int64_t, 3> s{};
    for (size_t i = 0; i < 3; ++i) {
      require(v[i].is_number_integer() && v[i].get<int64_t>() >= 0, where + ": '" + chunks_key + "' must hold non-negative integers");
      s[i] = v[i].get<int64_t>();
    }
    d.chunk_starts = s;
  }
  if (e.contains(crop_key) && !e[crop_key].is_null()) {
    require(e[crop_key].is_number_integer() && e[crop_key].get<int64_t>() >= 0,
            where + ": '" + crop_key + "' must be a non-negative integer");
    d.crop_start = e[crop_key].get<int64_t>();
  }
}

}  // namespace

preprocess::ClapDraws ClapDrawsTable::find(const MediaInput& in) const {
  if (by_name.empty()) return {};
  for (const std::string& key : {in.path, std::filesystem::path(in.path).filename().string(), in.name_hint,
                                 std::filesystem::path(in.name_hint).filename().string()}) {
    if (key.empty()) continue;
    auto it = by_name.find(key);
    if (it != by_name.end()) return it->second;
  }
  return {};
}

ClapDrawsTable read_clap_draws_file(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  require(j.is_object(), path + ": crop draws must be a JSON object");
  ClapDrawsTable t;
  if (j.contains("audio") && j["audio"].is_array()) {
    for (const auto& e : j["audio"]) {
      require(e.is_object() && e.contains("file") && e["file"].is_string(),
              path + ": every 'audio' entry needs a 'file' name");
      const std::string file = e["file"].get<std::string>();
      preprocess::ClapDraws d;
      read_entry(e, "fusion_chunk_starts", "waveform_crop_start", d, path + " (" + file + ")");
      t.by_name[file] = d;
    }
    return t;
  }
  for (const auto& [file, e] : j.items()) {
    require(e.is_object(), path + ": the entry for '" + file + "' must be an object {chunk_starts, crop_start}");
    preprocess::ClapDraws d;
    read_entry(e, "chunk_starts", "crop_start", d, path + " (" + file + ")");
    t.by_name[file] = d;
  }
  return t;
}

}  // namespace omnibind::experts::clap
