#include "omnibind/retrieval/bundle_query_embedder.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"

namespace omnibind::retrieval {

BundleQueryEmbedder::BundleQueryEmbedder(std::shared_ptr<const pipeline::ModelBundle> bundle) : bundle_(std::move(bundle)) {
  require(bundle_ != nullptr, "no model bundle given");
}

std::vector<float> BundleQueryEmbedder::embed(Modality m, const MediaInput& input) const {
  return embed_batch(m, {input}).at(0);
}

std::vector<std::vector<float>> BundleQueryEmbedder::embed_batch(Modality m, const std::vector<MediaInput>& inputs) const {
  std::vector<std::vector<float>> out;
  if (inputs.empty()) return out;
  at::Tensor u = bundle_->embed(m, inputs).to(at::kFloat).contiguous();  // [B, D], unit rows
  const int64_t d = u.size(1);
  const float* p = u.data_ptr<float>();
  for (int64_t i = 0; i < u.size(0); ++i) out.emplace_back(p + i * d, p + (i + 1) * d);
  return out;
}

}  // namespace omnibind::retrieval
