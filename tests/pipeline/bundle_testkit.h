// Small random-weight model bundles for tests: a custom binding (three spaces + IB, backbone BB) and a
// tiny real expert family "test-proj" (hashed features times a weights-file matrix, unit rows).
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <string>

#include "omnibind/binding/binding_config.h"
#include "omnibind/pipeline/expert_probe.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "retrieval/hash_expert.h"

namespace omnibind::testkit {

// weights: safetensors with "proj" [d, 64]; every modality; dim d.
class ProjExpert : public experts::Expert {
 public:
  explicit ProjExpert(const experts::ExpertOptions& o) {
    auto st = tensor_io::read_safetensors(o.weights);
    proj_ = tensor_io::to_tensor(st.tensors.at("proj")).to(at::kFloat).clone();
  }
  const std::string& name() const override { return name_; }
  std::vector<experts::Modality> modalities() const override { return hash_.modalities(); }
  int64_t dim() const override { return proj_.size(0); }
  at::Tensor preprocess(experts::Modality m, const experts::MediaInput& in) const override { return hash_.preprocess(m, in); }
  at::Tensor encode(experts::Modality, const at::Tensor& batch) const override {
    at::Tensor y = at::matmul(batch, proj_.t());
    return y / y.norm(2, {1}, true).clamp_min(1e-12);
  }
  static void register_once() {
    static bool done = [] {
      experts::register_expert("test-proj", "projected hashing expert for tests",
                               [](const experts::ExpertOptions& o) { return std::make_unique<ProjExpert>(o); });
      // Its width from the file header, so bundles check it at load without building the expert.
      pipeline::register_expert_probe("test-proj", [](const experts::ExpertOptions& o) {
        return pipeline::ExpertTraits{tensor_io::read_safetensors(o.weights).tensors.at("proj").shape.at(0), {}};
      });
      return true;
    }();
    (void)done;
  }

 private:
  std::string name_ = "test-proj";
  HashExpert hash_;
  at::Tensor proj_;
};

inline binding::BindingConfig tiny_binding() {
  return binding::parse_binding_config(R"({
    "name": "tiny",
    "experts": {"A": {"modalities": ["audio", "text"], "dim": 24},
                "B": {"modalities": ["image", "text"], "dim": 16},
                "P": {"modalities": ["point", "text"], "dim": 12},
                "IB": {"modalities": ["audio", "image", "text"], "dim": 32},
                "BB": {"modalities": ["image", "text"], "dim": 20}},
    "backbone": "BB", "heads_per_space": 3, "projector_hidden": 40, "router_hidden": [12, 6],
    "router_inputs": {"audio": ["A"], "image": ["B"], "point": ["P"], "text": ["A", "B", "P"]}})",
                                      "tiny binding");
}

// Writes weights for a test-proj expert of width d into `path`.
inline void write_proj_weights(const std::string& path, int64_t d, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  tensor_io::write_tensors(path, {{"proj", at::randn({d, HashExpert::kDim}, g)}});
}

// A complete bundle in `dir`: tiny binding (inline), random official heads, one test-proj expert per space.
inline pipeline::BundleManifest write_tiny_bundle(const std::filesystem::path& dir, uint64_t seed = 1,
                                                  bool binding_in_heads = false) {
  ProjExpert::register_once();
  auto config = tiny_binding();
  auto heads = pipeline::random_official_heads(config, {.seed = seed});
  pipeline::BundleManifest m;
  if (!binding_in_heads) m.binding = config;
  m.heads = "heads.safetensors";
  std::vector<pipeline::BundleFile> files;
  files.push_back({"heads.safetensors", "", [&](const std::string& p) {
                     std::map<std::string, std::string> meta;
                     if (binding_in_heads) meta["binding_config"] = binding::binding_config_to_json(config);
                     tensor_io::write_tensors(p, heads, meta);
                   }});
  uint64_t s = seed * 100;
  for (auto& e : config.experts) {
    if (e.name == "BB") continue;  // not an input of any head or router here
    const std::string rel = "experts/" + e.name + ".safetensors";
    const int64_t d = e.dim;
    const uint64_t es = ++s;
    files.push_back({rel, "", [d, es](const std::string& p) { write_proj_weights(p, d, es); }});
    m.experts.push_back({e.name, "test-proj", rel, "", "", "", {}});
  }
  pipeline::write_bundle(dir, m, files);
  return m;
}

}  // namespace omnibind::testkit
