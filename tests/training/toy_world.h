// A small world of expert spaces for training tests: class latents, experts as random linear maps
// with a per-(expert, modality) offset (the modality gap) and noise. AT covers audio+text, IT
// image+text (the backbone), PI point+image; nothing covers audio+point.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <string>

#include "omnibind/binding/binding_config.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::training::toy {

inline const char* kConfigJson = R"({
  "experts": {"AT": {"modalities": ["audio", "text"], "dim": 12},
              "IT": {"modalities": ["image", "text"], "dim": 16},
              "PI": {"modalities": ["point", "image"], "dim": 12}},
  "backbone": "IT", "heads_per_space": 2, "projector_hidden": 32, "router_hidden": [16, 8], "text_temperature": 10,
  "router_inputs": {"audio": ["AT"], "image": ["IT"], "point": ["PI"], "text": ["AT", "IT"]}})";

struct World {
  int64_t classes = 8, latent = 16;
  at::Tensor class_latent;                       // [C, L]
  std::map<std::string, at::Tensor> maps;        // expert -> [d, L]
  std::map<std::string, at::Tensor> gaps;        // "expert/modality" -> [d]
  double spread = 0.12, noise = 0.05;

  explicit World(uint64_t seed) {
    at::manual_seed(static_cast<int64_t>(seed));
    class_latent = at::randn({classes, latent});
    class_latent = class_latent / class_latent.norm(2, 1, true);
    for (auto [name, dim] : {std::pair<const char*, int64_t>{"AT", 12}, {"IT", 16}, {"PI", 12}}) maps[name] = at::randn({dim, latent});
    for (const char* key : {"AT/audio", "AT/text", "IT/image", "IT/text", "PI/point", "PI/image"}) {
      const std::string e = std::string(key).substr(0, 2);
      at::Tensor g = at::randn({maps[e].size(0)});
      gaps[key] = g / g.norm() * 0.4;
    }
  }
  // Embeddings of items with these labels (one latent per item, shared by all experts).
  std::map<std::string, at::Tensor> embed(const std::string& modality, const at::Tensor& labels) const {
    at::Tensor z = class_latent.index_select(0, labels) + spread * at::randn({labels.size(0), latent});
    std::map<std::string, at::Tensor> out;
    for (const auto& [e, w] : maps) {
      auto it = gaps.find(e + "/" + modality);
      if (it == gaps.end()) continue;
      at::Tensor x = at::mm(z, w.t());
      x = x / x.norm(2, 1, true) + it->second + noise * at::randn_like(x);
      out[e] = x / x.norm(2, 1, true);
    }
    return out;
  }
  PoolManifest manifest() const {
    PoolManifest m;
    m.experts = {{"AT", {"audio", "text"}, 12}, {"IT", {"image", "text"}, 16}, {"PI", {"point", "image"}, 12}};
    m.backbone = "IT";
    for (int64_t c = 0; c < classes; ++c) m.classes.push_back("class" + std::to_string(c));
    return m;
  }
  // Unpaired pools: every modality draws its own items; texts carry a source (audio 0 / image 1).
  void write_pool(const std::filesystem::path& dir, int64_t rows, bool half = false) const {
    PoolWriter w(dir, manifest());
    w.set_half(half);
    for (const char* m : {"audio", "image", "point", "text"}) {
      at::Tensor labels = at::randint(classes, {rows}, at::kLong);
      std::map<std::string, at::Tensor> cols{{"label", labels}};
      if (std::string(m) == "text") cols["source"] = at::randint(2, {rows}, at::kLong);
      w.add(m, embed(m, labels), cols);
    }
    w.finish();
  }
};

}  // namespace omnibind::training::toy
