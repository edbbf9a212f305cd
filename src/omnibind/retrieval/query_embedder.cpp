#include "omnibind/retrieval/query_embedder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/retrieval/bundle_query_embedder.h"

namespace omnibind::retrieval {

std::vector<std::vector<float>> QueryEmbedder::embed_batch(Modality m, const std::vector<MediaInput>& inputs) const {
  std::vector<std::vector<float>> out;
  out.reserve(inputs.size());
  for (auto& in : inputs) out.push_back(embed(m, in));
  return out;
}

bool QueryEmbedder::covers(Modality m) const {
  auto ms = modalities();
  return std::find(ms.begin(), ms.end(), m) != ms.end();
}

ExpertQueryEmbedder::ExpertQueryEmbedder(std::unique_ptr<experts::Expert> expert) : expert_(std::move(expert)) {
  require(expert_ != nullptr, "no expert given");
}

namespace {
std::vector<float> unit_row(const at::Tensor& row) {
  at::Tensor r = row.to(at::kFloat).contiguous();
  std::vector<float> v(r.data_ptr<float>(), r.data_ptr<float>() + r.numel());
  double s = 0;
  for (float x : v) s += double(x) * x;
  require(s > 0 && std::isfinite(s), "the model produced a zero or non-finite embedding");
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (float& x : v) x *= inv;
  return v;
}
}  // namespace

std::vector<float> ExpertQueryEmbedder::embed(Modality m, const MediaInput& input) const {
  return embed_batch(m, {input}).at(0);
}

std::vector<std::vector<float>> ExpertQueryEmbedder::embed_batch(Modality m, const std::vector<MediaInput>& inputs) const {
  require(expert_->covers(m), "model '" + expert_->name() + "' does not embed " + std::string(experts::modality_name(m)));
  std::vector<std::vector<float>> out;
  if (inputs.empty()) return out;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> items;
  items.reserve(inputs.size());
  for (auto& in : inputs) items.push_back(expert_->preprocess(m, in));
  bool same_shape = std::all_of(items.begin(), items.end(), [&](const at::Tensor& t) { return t.sizes() == items[0].sizes(); });
  if (!same_shape && items.size() > 1) {  // e.g. variable-length audio: one forward pass each
    for (auto& in : inputs) out.push_back(embed(m, in));
    return out;
  }
  at::Tensor emb = expert_->encode(m, at::stack(items));  // [B, dim]
  require(emb.dim() == 2 && emb.size(0) == static_cast<int64_t>(inputs.size()),
          "model '" + expert_->name() + "' returned embeddings of an unexpected shape");
  for (int64_t i = 0; i < emb.size(0); ++i) out.push_back(unit_row(emb[i]));
  return out;
}

std::unique_ptr<QueryEmbedder> make_query_embedder(const EmbedderSpec& spec) {
  require(!(spec.model.empty() && spec.expert.empty()), "no model: pass --model BUNDLE or --expert NAME");
  require(spec.model.empty() || spec.expert.empty(), "pass either --model BUNDLE or --expert NAME, not both");
  if (!spec.model.empty()) {
    pipeline::BundleLoadOptions o;
    o.threads = spec.expert_options.threads;
    return std::make_unique<BundleQueryEmbedder>(
        std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(spec.model, o)));
  }
  return std::make_unique<ExpertQueryEmbedder>(experts::create_expert(spec.expert, spec.expert_options));
}

}  // namespace omnibind::retrieval
