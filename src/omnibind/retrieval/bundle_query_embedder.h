// A model bundle (pipeline::ModelBundle: experts + OmniBind heads/routers) as a query embedder: media
// and text -> the unified space. What `search`, `serve` and `embed` use for `--model BUNDLE`.
#pragma once
#include <memory>

#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/retrieval/query_embedder.h"

namespace omnibind::retrieval {

class BundleQueryEmbedder : public QueryEmbedder {
 public:
  explicit BundleQueryEmbedder(std::shared_ptr<const pipeline::ModelBundle> bundle);
  int64_t dim() const override { return bundle_->dim(); }
  std::vector<Modality> modalities() const override { return bundle_->modalities(); }
  std::string name() const override { return bundle_->name(); }
  std::vector<float> embed(Modality m, const MediaInput& input) const override;
  std::vector<std::vector<float>> embed_batch(Modality m, const std::vector<MediaInput>& inputs) const override;
  const pipeline::ModelBundle& bundle() const { return *bundle_; }

 private:
  std::shared_ptr<const pipeline::ModelBundle> bundle_;
};

}  // namespace omnibind::retrieval
