#include "omnibind/experts/zoo/zoo_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/error.h"

namespace omnibind::experts::zoo {
namespace {

using nlohmann::json;

int64_t get_int(const json& j, const char* field, int64_t fallback, const std::string& where) {
  if (!j.contains(field)) return fallback;
  require(j[field].is_number_integer(), where + ": '" + field + "' must be an integer");
  return j[field].get<int64_t>();
}

float get_float(const json& j, const char* field, float fallback, const std::string& where) {
  if (!j.contains(field)) return fallback;
  require(j[field].is_number(), where + ": '" + field + "' must be a number");
  return j[field].get<float>();
}

std::vector<int64_t> get_ints(const json& j, const char* field, std::vector<int64_t> fallback, const std::string& where) {
  if (!j.contains(field)) return fallback;
  require(j[field].is_array(), where + ": '" + field + "' must be a list of integers");
  std::vector<int64_t> out;
  for (auto& v : j[field]) {
    require(v.is_number_integer(), where + ": '" + field + "' must be a list of integers");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

void require_positive(int64_t v, const std::string& what, const std::string& source) {
  require(v > 0 && v <= (int64_t{1} << 24), source + ": zoo_config " + what + " must be in 1..16777216, got " + std::to_string(v));
}

}  // namespace

std::vector<std::string> ZooConfig::modalities() const {
  std::vector<std::string> out;
  if (audio) out.push_back("audio");
  if (image) out.push_back("image");
  if (point) out.push_back("point");
  if (text) out.push_back("text");
  return out;
}

bool ZooConfig::has(const std::string& m) const {
  return (m == "audio" && audio) || (m == "image" && image) || (m == "point" && point) || (m == "text" && text);
}

ZooConfig default_zoo_config(const std::vector<std::string>& modalities, int64_t dim, const std::string& key) {
  ZooConfig c;
  c.key = key;
  c.dim = dim;
  for (auto& m : modalities) {
    if (m == "audio") c.audio = ZooAudioConfig{};
    else if (m == "image") c.image = ZooImageConfig{};
    else if (m == "point") c.point = ZooPointConfig{};
    else if (m == "text") c.text = ZooTextConfig{};
    else throw InputError("unknown modality '" + m + "' (expected audio, image, point or text)");
  }
  validate_zoo_config(c, "zoo config");
  return c;
}

std::string zoo_config_to_json(const ZooConfig& c) {
  json j;
  j["format"] = "omnibind-zoo";
  j["version"] = 1;
  j["key"] = c.key;
  j["dim"] = c.dim;
  json towers = json::object();
  if (c.audio)
    towers["audio"] = {{"arch", "logmel_cnn"}, {"sample_rate", 16000}, {"mel_bins", c.audio->mel_bins},
                       {"frames", c.audio->frames}, {"channels", c.audio->channels}, {"hidden", c.audio->hidden}};
  if (c.image)
    towers["image"] = {{"arch", "small_cnn"}, {"size", c.image->size}, {"channels_in", c.image->channels_in},
                       {"mean", c.image->mean}, {"std", c.image->std}, {"channels", c.image->channels},
                       {"hidden", c.image->hidden}};
  if (c.point)
    towers["point"] = {{"arch", "pointnet"}, {"points", c.point->points}, {"widths", c.point->widths},
                       {"hidden", c.point->hidden}};
  if (c.text)
    towers["text"] = {{"arch", "hashed_ngram_bag"}, {"buckets", c.text->buckets}, {"max_tokens", c.text->max_tokens},
                      {"width", c.text->width}, {"hidden", c.text->hidden}};
  j["modalities"] = towers;
  return j.dump();
}

ZooConfig zoo_config_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(source + ": zoo_config is not valid JSON (" + e.what() + ")");
  }
  require(j.is_object(), source + ": zoo_config must be a JSON object");
  require(j.value("format", "") == "omnibind-zoo", source + ": zoo_config 'format' must be \"omnibind-zoo\"");
  require(j.contains("key") && j["key"].is_string() && !j["key"].get<std::string>().empty(),
          source + ": zoo_config needs a non-empty string 'key'");
  ZooConfig c;
  c.key = j["key"].get<std::string>();
  c.dim = get_int(j, "dim", 0, source + ": zoo_config");
  require(j.contains("modalities") && j["modalities"].is_object(), source + ": zoo_config needs an object 'modalities'");
  for (auto& [m, t] : j["modalities"].items()) {
    const std::string where = source + ": zoo_config.modalities." + m;
    require(t.is_object(), where + " must be an object");
    if (m == "audio") {
      ZooAudioConfig a;
      require(get_int(t, "sample_rate", 16000, where) == 16000, where + ": only sample_rate 16000 is supported");
      a.mel_bins = get_int(t, "mel_bins", a.mel_bins, where);
      a.frames = get_int(t, "frames", a.frames, where);
      a.channels = get_ints(t, "channels", a.channels, where);
      a.hidden = get_int(t, "hidden", a.hidden, where);
      c.audio = a;
    } else if (m == "image") {
      ZooImageConfig i;
      i.size = get_int(t, "size", i.size, where);
      i.channels_in = get_int(t, "channels_in", i.channels_in, where);
      i.mean = get_float(t, "mean", i.mean, where);
      i.std = get_float(t, "std", i.std, where);
      i.channels = get_ints(t, "channels", i.channels, where);
      i.hidden = get_int(t, "hidden", i.hidden, where);
      c.image = i;
    } else if (m == "point") {
      ZooPointConfig p;
      p.points = get_int(t, "points", p.points, where);
      p.widths = get_ints(t, "widths", p.widths, where);
      p.hidden = get_int(t, "hidden", p.hidden, where);
      c.point = p;
    } else if (m == "text") {
      ZooTextConfig x;
      x.buckets = get_int(t, "buckets", x.buckets, where);
      x.max_tokens = get_int(t, "max_tokens", x.max_tokens, where);
      x.width = get_int(t, "width", x.width, where);
      x.hidden = get_int(t, "hidden", x.hidden, where);
      c.text = x;
    } else {
      throw InputError(source + ": zoo_config has unknown modality '" + m + "' (expected audio, image, point or text)");
    }
  }
  validate_zoo_config(c, source);
  return c;
}

void validate_zoo_config(const ZooConfig& c, const std::string& source) {
  require(!c.key.empty(), source + ": zoo_config key must not be empty");
  require_positive(c.dim, "dim", source);
  require(c.audio || c.image || c.point || c.text, source + ": zoo_config has no modality");
  if (c.audio) {
    auto& a = *c.audio;
    require_positive(a.mel_bins, "audio.mel_bins", source);
    require(128 % a.mel_bins == 0, source + ": zoo_config audio.mel_bins must divide 128, got " + std::to_string(a.mel_bins));
    require_positive(a.frames, "audio.frames", source);
    require(!a.channels.empty(), source + ": zoo_config audio.channels must not be empty");
    for (auto ch : a.channels) require_positive(ch, "audio.channels", source);
    const int64_t shrink = int64_t{1} << a.channels.size();
    require(a.frames / shrink > 0 && a.mel_bins / shrink > 0,
            source + ": zoo_config audio frames and mel_bins must stay >= 1 after " + std::to_string(a.channels.size()) +
                " 2x poolings");
    require_positive(a.hidden, "audio.hidden", source);
  }
  if (c.image) {
    auto& i = *c.image;
    require_positive(i.size, "image.size", source);
    require(i.size <= 1024, source + ": zoo_config image.size must be at most 1024");
    require(i.channels_in == 1 || i.channels_in == 3, source + ": zoo_config image.channels_in must be 1 or 3");
    require(i.std > 0.0f, source + ": zoo_config image.std must be positive");
    require(!i.channels.empty(), source + ": zoo_config image.channels must not be empty");
    for (auto ch : i.channels) require_positive(ch, "image.channels", source);
    require(i.size >> i.channels.size() > 0,
            source + ": zoo_config image.size must stay >= 1 after " + std::to_string(i.channels.size()) + " 2x poolings");
    require_positive(i.hidden, "image.hidden", source);
  }
  if (c.point) {
    auto& p = *c.point;
    require_positive(p.points, "point.points", source);
    require(!p.widths.empty(), source + ": zoo_config point.widths must not be empty");
    for (auto w : p.widths) require_positive(w, "point.widths", source);
    require_positive(p.hidden, "point.hidden", source);
  }
  if (c.text) {
    auto& t = *c.text;
    require_positive(t.buckets, "text.buckets", source);
    require_positive(t.max_tokens, "text.max_tokens", source);
    require_positive(t.width, "text.width", source);
    require_positive(t.hidden, "text.hidden", source);
  }
}

}  // namespace omnibind::experts::zoo
