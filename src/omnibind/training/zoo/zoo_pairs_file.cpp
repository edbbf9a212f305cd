#include "omnibind/training/zoo/zoo_pairs_file.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::training::zoo {
namespace fs = std::filesystem;
namespace ez = experts::zoo;

namespace {

const std::vector<std::string> kModalities{"audio", "image", "point", "text"};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

ZooPairsListing parse_zoo_pairs(const std::string& text, const std::string& path, const std::vector<std::string>& allowed) {
  ZooPairsListing out;
  out.path = path;
  const fs::path base = fs::path(path).parent_path();
  std::istringstream in(text);
  std::string line;
  int64_t n = 0;
  std::map<std::string, int64_t> count;
  bool multi = false;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      std::string what = e.what();
      const auto colon = what.find("parse error");
      throw InputError(where + "bad JSON (" + (colon == std::string::npos ? what : what.substr(colon)) + ")");
    }
    require(j.is_object(), where + "expected a JSON object, got " + std::string(j.type_name()));
    ZooPairItem item;
    item.line = n;
    for (const auto& [key, value] : j.items()) {
      if (key == "group") {
        require(value.is_number_integer() || (value.is_string() && !value.get<std::string>().empty()),
                where + "\"group\" must be an integer or a non-empty string");
        item.group = value.dump();
        continue;
      }
      require(std::find(kModalities.begin(), kModalities.end(), key) != kModalities.end(),
              where + "unknown field \"" + key + "\" (audio, image, point, text, group)");
      require(std::find(allowed.begin(), allowed.end(), key) != allowed.end(),
              where + "modality \"" + key + "\" is not in --modalities (" + join(allowed) + ")");
      require(value.is_string(), where + "\"" + key + "\" must be a string");
      std::string v = value.get<std::string>();
      require(!v.empty(), where + "\"" + key + "\" is empty");
      if (key != "text") {
        fs::path p(v);
        if (p.is_relative()) p = base / p;
        std::error_code ec;
        require(fs::is_regular_file(p, ec), where + "no such file " + p.string());
        v = p.string();
      }
      item.values[key] = v;
      ++count[key];
    }
    require(!item.values.empty(), where + "the item names no modality");
    multi = multi || item.values.size() >= 2;
    out.items.push_back(std::move(item));
  }
  require(!out.items.empty(), path + ": no items");
  for (const auto& m : kModalities)
    if (count.count(m)) out.modalities.push_back(m);
  require(out.modalities.size() >= 2, path + ": the items hold only " + join(out.modalities) +
                                          "; contrastive training needs at least 2 modalities");
  require(multi, path + ": no item pairs two modalities");
  for (const auto& m : allowed)
    require(count.count(m) != 0, path + ": no item has " + m + " (listed in --modalities)");
  return out;
}

ZooPairsListing read_zoo_pairs(const std::string& path, const std::vector<std::string>& allowed) {
  return parse_zoo_pairs(read_file_bytes(path), path, allowed);
}

ZooPairedData load_zoo_pairs(const ZooPairsListing& listing, const ez::ZooConfig& config,
                             const std::function<void(int64_t, int64_t)>& progress) {
  const int64_t n = static_cast<int64_t>(listing.items.size());
  for (const auto& m : listing.modalities)
    require(config.has(m), listing.path + ": the expert has no " + m + " tower");
  ZooPairedData data;
  std::vector<int64_t> group;
  std::map<std::string, int64_t> ids;
  for (const auto& it : listing.items) {
    auto text = it.values.find("text");
    std::string key = !it.group.empty() ? "g" + it.group
                      : text != it.values.end() ? "t" + text->second
                                                : "i" + std::to_string(it.line);
    group.push_back(ids.emplace(key, static_cast<int64_t>(ids.size())).first->second);
  }
  data.group = at::tensor(group, at::kLong);
  // Decode + preprocess per modality, spread over the intra-op threads (each row is independent).
  int64_t total = 0;
  for (const auto& it : listing.items) total += static_cast<int64_t>(it.values.size());
  std::atomic<int64_t> done{0};
  for (const auto& m : listing.modalities) {
    std::vector<at::Tensor> rows(static_cast<size_t>(n));
    std::vector<std::string> errors(static_cast<size_t>(n));
    at::parallel_for(0, n, 4, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const auto& item = listing.items[static_cast<size_t>(i)];
        auto v = item.values.find(m);
        if (v == item.values.end()) continue;
        try {
          const std::string& s = v->second;
          if (m == "audio") rows[static_cast<size_t>(i)] = ez::zoo_audio_input(media::decode_audio_file(s), *config.audio, s);
          else if (m == "image") rows[static_cast<size_t>(i)] = ez::zoo_image_input(media::decode_image_file(s), *config.image, s);
          else if (m == "point") rows[static_cast<size_t>(i)] = ez::zoo_point_input(media::read_point_cloud_file(s), *config.point, s);
          else rows[static_cast<size_t>(i)] = ez::zoo_text_input(s, *config.text);
        } catch (const InputError& e) {
          errors[static_cast<size_t>(i)] = listing.path + ":" + std::to_string(item.line) + ": " + e.what();
        }
        ++done;
      }
    });
    for (const auto& e : errors) require(e.empty(), e);
    at::Tensor like;
    for (const auto& r : rows)
      if (r.defined()) like = r;
    at::Tensor present = at::zeros({n}, at::kBool);
    for (int64_t i = 0; i < n; ++i) {
      if (rows[static_cast<size_t>(i)].defined()) present[i].fill_(true);
      else rows[static_cast<size_t>(i)] = at::zeros_like(like);
    }
    data.inputs[m] = at::stack(rows);
    data.present[m] = present;
    if (progress) progress(done.load(), total);
  }
  return data;
}

}  // namespace omnibind::training::zoo
