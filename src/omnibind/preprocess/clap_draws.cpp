// JSON tables of recorded CLAP draws.
#include "omnibind/preprocess/clap_draws.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

int64_t non_negative(const nlohmann::json& v, const std::string& what) {
  require(v.is_number_integer() && v.get<int64_t>() >= 0, what + " must be a non-negative integer");
  return v.get<int64_t>();
}

ClapDraws draws_from(const nlohmann::json& e, const char* chunks_key, const char* crop_key, const std::string& where) {
  ClapDraws d;
  if (e.contains(chunks_key) && !e[chunks_key].is_null()) {
    const auto& c = e[chunks_key];
    require(c.is_array() && c.size() == 3, where + ": '" + chunks_key + "' must be 3 integers (front, middle, back)");
    d.chunk_starts = std::array<int64_t, 3>{non_negative(c[0], where + ": chunk start"),
                                            non_negative(c[1], where + ": chunk start"),
                                            non_negative(c[2], where + ": chunk start")};
  }
  if (e.contains(crop_key) && !e[crop_key].is_null()) d.crop_start = non_negative(e[crop_key], where + ": '" + crop_key + "'");
  return d;
}

std::string file_name(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string stem(const std::string& name) {
  const size_t dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

}  // namespace

ClapDrawsTable parse_clap_draws(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": not valid JSON for CLAP draws (" + std::string(e.what()) + ")");
  }
  require(j.is_object(), source + ": CLAP draws must be a JSON object");
  ClapDrawsTable t;
  if (j.contains("audio") && j["audio"].is_array()) {  // the fixture's inputs.json
    for (const auto& e : j["audio"]) {
      require(e.is_object() && e.contains("file") && e["file"].is_string(),
              source + ": every 'audio' entry needs a \"file\" string");
      const std::string file = e["file"];
      const ClapDraws d = draws_from(e, "fusion_chunk_starts", "waveform_crop_start", source + " (" + file + ")");
      t[file] = d;
      if (e.contains("name") && e["name"].is_string()) t[e["name"].get<std::string>()] = d;
    }
    return t;
  }
  for (const auto& [key, e] : j.items()) {
    require(e.is_object(), source + ": entry '" + key + "' must be an object with chunk_starts / crop_start");
    t[key] = draws_from(e, "chunk_starts", "crop_start", source + " (" + key + ")");
  }
  return t;
}

ClapDrawsTable read_clap_draws_file(const std::string& path) { return parse_clap_draws(read_file_bytes(path), path); }

const ClapDraws* find_clap_draws(const ClapDrawsTable& table, const std::string& input) {
  for (const std::string& k : {input, file_name(input), stem(file_name(input))}) {
    const auto it = table.find(k);
    if (it != table.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace omnibind::preprocess
