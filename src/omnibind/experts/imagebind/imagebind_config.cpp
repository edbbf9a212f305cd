#include "omnibind/experts/imagebind/imagebind_config.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::imagebind {

int64_t ImageBindConfig::vision_tokens() const {
  return 1 + (video_frames / kernel_size[0]) * (image_size / kernel_size[1]) * (image_size / kernel_size[2]);
}

int64_t ImageBindConfig::audio_tokens() const {
  return 1 + ((audio_mel_bins - audio_kernel) / audio_stride + 1) * ((audio_target_len - audio_kernel) / audio_stride + 1);
}

void ImageBindConfig::validate() const {
  auto tower = [&](const TowerConfig& t, const char* what) {
    require(t.dim > 0 && t.blocks > 0 && t.heads > 0 && t.dim % t.heads == 0,
            name + ": " + what + " tower needs positive dim/blocks/heads with dim divisible by heads (got dim " +
                std::to_string(t.dim) + ", blocks " + std::to_string(t.blocks) + ", heads " + std::to_string(t.heads) + ")");
  };
  tower(vision, "vision");
  tower(audio, "audio");
  tower(text, "text");
  require(out_dim > 0, name + ": out_embed_dim must be positive");
  require(kernel_size[0] > 0 && kernel_size[1] > 0 && kernel_size[2] > 0 && video_frames % kernel_size[0] == 0 &&
              image_size % kernel_size[1] == 0 && image_size % kernel_size[2] == 0,
          name + ": kernel_size must tile video_frames x 224 x 224");
  require(audio_kernel > 0 && audio_stride > 0 && audio_mel_bins >= audio_kernel && audio_target_len >= audio_kernel,
          name + ": audio_kernel_size/audio_stride do not fit audio_num_mel_bins x audio_target_len");
}

ImageBindConfig builtin_config(const std::string& size) {
  // imagebind_huge(): the constructor with these overrides; the audio tower keeps the defaults.
  if (size == "huge") {
    ImageBindConfig c;
    c.name = "huge";
    return c;
  }
  throw InputError("unknown ImageBind size '" + size + "' (known: huge; or give --config FILE.json)");
}

ImageBindConfig load_config(const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  require(doc.is_object(), path + ": expected a JSON object of ImageBindModel kwargs");
  const nlohmann::json& kw = doc.contains("kwargs") ? doc["kwargs"] : doc;
  require(kw.is_object(), path + ": 'kwargs' must be an object");

  // Reference constructor defaults (imagebind_model.ImageBindModel.__init__).
  ImageBindConfig c;
  c.name = path;
  c.out_dim = 768;
  c.vision = {1024, 24, 16};
  c.audio = {768, 12, 12};
  c.text = {768, 12, 12};

  auto get_int = [&](const char* key, int64_t& out) {
    if (!kw.contains(key)) return;
    const auto& v = kw[key];
    require(v.is_number_integer(), path + ": '" + key + "' must be an integer");
    out = v.get<int64_t>();
  };
  get_int("out_embed_dim", c.out_dim);
  get_int("vision_embed_dim", c.vision.dim);
  get_int("vision_num_blocks", c.vision.blocks);
  get_int("vision_num_heads", c.vision.heads);
  get_int("audio_embed_dim", c.audio.dim);
  get_int("audio_num_blocks", c.audio.blocks);
  get_int("audio_num_heads", c.audio.heads);
  get_int("text_embed_dim", c.text.dim);
  get_int("text_num_blocks", c.text.blocks);
  get_int("text_num_heads", c.text.heads);
  get_int("video_frames", c.video_frames);
  get_int("audio_kernel_size", c.audio_kernel);
  get_int("audio_stride", c.audio_stride);
  get_int("audio_num_mel_bins", c.audio_mel_bins);
  get_int("audio_target_len", c.audio_target_len);
  if (kw.contains("kernel_size")) {
    const auto& k = kw["kernel_size"];
    require(k.is_array() && k.size() == 3 && k[0].is_number_integer() && k[1].is_number_integer() &&
                k[2].is_number_integer(),
            path + ": 'kernel_size' must be a list of 3 integers");
    for (int i = 0; i < 3; ++i) c.kernel_size[i] = k[i].get<int64_t>();
  }
  c.validate();
  return c;
}

}  // namespace omnibind::experts::imagebind
