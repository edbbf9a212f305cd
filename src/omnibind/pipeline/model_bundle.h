// A model bundle: the experts and the OmniBind heads/routers behind one manifest (bundle.json, see
// bundle_manifest.h), i.e. media/text -> the unified space in one call.
//   auto bundle = ModelBundle::load("my.bundle");
//   at::Tensor u = bundle.embed(Modality::Audio, {MediaInput::from_path("dog.wav")});   // [1, D]
// Loading validates everything up front (manifest fields, files, expert names, and widths against the
// heads where a family's probe knows them without reading weights, see expert_probe.h); each problem
// is one InputError naming the field or file. Experts are built lazily: the first embed of a modality
// builds the experts it needs (so `embed --modality image` never reads the audio experts' weights),
// and release_experts() drops them again. Entries with the same family, files and size share one
// instance (EVA02-E feeding EVA_E14p and the Uni3D image/text slots runs once per batch).
// Thread-safe after load: embed/expert_embeddings/release_experts may be called from several threads.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/experts/expert.h"
#include "omnibind/pipeline/bundle_manifest.h"

namespace omnibind::pipeline {

using experts::MediaInput;
using experts::Modality;

struct BundleLoadOptions {
  // "fp32" | "bf16" overrides heads and experts; "" = the manifest's; "auto" (or neither given) =
  // omnibind::default_precision() (bf16 where the CPU has native bf16, else fp32).
  std::string precision;
  int threads = 0;     // experts' intra-op threads (0 = libtorch's default)
  bool eager = false;  // build every expert in load() (the first problem is thrown there)
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
  // The expert instance feeding binding name `name` for modality m (nullptr if none), built on first
  // use (InputError naming the manifest entry when it cannot be built). Valid until release_experts().
  const experts::Expert* expert_for(const std::string& name, Modality m) const;

  // "fp32" | "bf16": the precision the heads and experts compute in (after options/manifest/auto).
  const std::string& precision() const { return precision_; }

  // One distinct expert a modality runs and the binding names it feeds (in required_inputs order).
  struct ExpertRun {
    std::shared_ptr<const experts::Expert> expert;  // kept alive by the holder even across release
    std::vector<std::string> names;
    std::string family;  // the manifest's family ("precomputed" looks inputs up by path, not bytes)
  };
  // The experts modality m needs, built now if not yet (InputError naming the failing entry).
  std::vector<ExpertRun> experts_for(Modality m) const;
  // Drops every built expert (weights unmapped once in-flight calls holding one finish); the next
  // embed builds what it needs again. Returns how many instances were dropped.
  size_t release_experts() const;
  // Drops the experts modality m uses (also those it shares with other modalities).
  size_t release_experts(Modality m) const;
  // Builds every distinct expert once, one at a time (each dropped again unless it was built before),
  // checking each entry's width and modalities: what load(eager) checks, with the memory of the
  // largest expert only. `convert` runs it so a bundle that cannot embed is never written.
  void verify_experts() const;
  // Binding names whose expert is built now (sorted, unique) and the number of built instances.
  std::vector<std::string> loaded_experts() const;
  size_t loaded_instances() const;

 private:
  // One distinct (family, files, size): built on demand, shared by every entry naming it.
  struct Instance {
    std::string family;
    experts::ExpertOptions options;
    std::mutex mutex;                                // guards `expert` (and serialises its build)
    std::shared_ptr<const experts::Expert> expert;   // null until needed / after release
  };
  struct Feed {
    BundleExpert entry;
    size_t index = 0;        // position in manifest().experts (for messages)
    int64_t want_dim = 0;    // width the heads take (0 = unchecked)
    std::vector<Modality> serves;  // modalities this entry may feed (restriction, else the family's)
    std::shared_ptr<Instance> instance;
  };
  static Feed check_feed(const ModelBundle& b, const BundleExpert& e, size_t i, const std::string& src,
                         std::shared_ptr<Instance> inst);
  void check_covers(Modality m) const;
  const Feed* feed_for(const std::string& name, Modality m) const;
  std::shared_ptr<const experts::Expert> build(const Feed& f, Modality m) const;

  std::filesystem::path dir_;
  BundleManifest manifest_;
  std::string precision_;
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

// One expert's encode over preprocessed items of one modality: stacked into one batch when their shapes
// agree, else one forward pass each (e.g. variable-length audio). [B, d] float32, contiguous.
at::Tensor encode_items(const experts::Expert& e, Modality m, const std::vector<at::Tensor>& items);

}  // namespace omnibind::pipeline
