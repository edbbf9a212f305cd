// A model bundle: the experts and the OmniBind heads/routers behind one manifest (bundle.json, see
// bundle_manifest.h), i.e. media/text -> the unified space in one call.
//   auto bundle = ModelBundle::load("my.bundle");
//   at::Tensor u = bundle.embed(Modality::Audio, {MediaInput::from_path("dog.wav")});   // [1, D]
// Loading validates everything up front (manifest fields, files, expert names and widths against the
// heads); each problem is one InputError naming the field or file. Thread-safe after load.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/experts/expert.h"
#include "omnibind/pipeline/bundle_manifest.h"

namespace omnibind::pipeline {

using experts::MediaInput;
using experts::Modality;

struct BundleLoadOptions {
  std::string precision;  // "" = the manifest's; "fp32" | "bf16" overrides heads and experts
  int threads = 0;        // experts' intra-op threads (0 = libtorch's default)
};

class ModelBundle {
 public:
  static ModelBundle load(const std::filesystem::path& dir, const BundleLoadOptions& options = {});

  const std::filesystem::path& dir() const { return dir_; }
  const BundleManifest& manifest() const { return manifest_; }
  const binding::OmniBindModel& model() const { return *model_; }
  int64_t dim() const { return model_->unified_dim(); }
  // Modalities with a router whose every required expert has an entry: what embed() accepts.
  std::vector<Modality> modalities() const;
  bool covers(Modality m) const;
  // "omnibind:<binding name>" (e.g. "omnibind:large"), for reports and the server's model field.
  std::string name() const;

  // Unified unit-norm embeddings [B, D] float32. InputError naming the input on bad media.
  at::Tensor embed(Modality m, const std::vector<MediaInput>& inputs) const;
  // Every expert embedding the modality needs: binding name -> [B, d] (unit rows, float32).
  std::map<std::string, at::Tensor> expert_embeddings(Modality m, const std::vector<MediaInput>& inputs) const;
  // Routing weights [B, S] over config().slots(m).
  at::Tensor routing_weights(Modality m, const std::vector<MediaInput>& inputs) const;
  // The expert instance feeding binding name `name` for modality m (nullptr if none).
  const experts::Expert* expert_for(const std::string& name, Modality m) const;

 private:
  struct Feed {
    BundleExpert entry;
    std::shared_ptr<const experts::Expert> expert;
  };
  void check_covers(Modality m) const;

  std::filesystem::path dir_;
  BundleManifest manifest_;
  std::shared_ptr<const binding::OmniBindModel> model_;
  std::vector<Feed> feeds_;
};

// One file to place in a bundle: copied (hard-linked when possible) from `source`, or produced by
// `write(path)` when set. `relative` is its path inside the bundle.
struct BundleFile {
  std::string relative;
  std::string source;
  std::function<void(const std::string& path)> write;
};

// Writes DIR atomically: everything goes to a sibling staging directory that is renamed into place
// (an existing DIR is replaced only when `overwrite`, else InputError). The manifest's paths should
// name the files given here (or absolute paths).
void write_bundle(const std::filesystem::path& dir, const BundleManifest& manifest, const std::vector<BundleFile>& files,
                  bool overwrite = false);

}  // namespace omnibind::pipeline
