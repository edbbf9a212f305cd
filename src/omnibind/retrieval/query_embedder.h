// Media/text -> one unit vector in the index's space. The model bundle (experts + OmniBind heads and
// routers) implements this for the unified space; ExpertQueryEmbedder serves one expert's space.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/experts/expert.h"

namespace omnibind::retrieval {

using experts::MediaInput;
using experts::Modality;

class QueryEmbedder {
 public:
  virtual ~QueryEmbedder() = default;
  virtual int64_t dim() const = 0;
  virtual std::vector<Modality> modalities() const = 0;
  virtual std::string name() const = 0;
  // Unit-norm [dim]. InputError naming the input on bad media or an unsupported modality.
  // Must be safe to call from several threads at once.
  virtual std::vector<float> embed(Modality m, const MediaInput& input) const = 0;
  // Several inputs of one modality at once (one forward pass where the model allows).
  virtual std::vector<std::vector<float>> embed_batch(Modality m, const std::vector<MediaInput>& inputs) const;
  bool covers(Modality m) const;
};

// One registered expert (experts::create_expert) as a query embedder.
class ExpertQueryEmbedder : public QueryEmbedder {
 public:
  explicit ExpertQueryEmbedder(std::unique_ptr<experts::Expert> expert);
  int64_t dim() const override { return expert_->dim(); }
  std::vector<Modality> modalities() const override { return expert_->modalities(); }
  std::string name() const override { return expert_->name(); }
  std::vector<float> embed(Modality m, const MediaInput& input) const override;
  std::vector<std::vector<float>> embed_batch(Modality m, const std::vector<MediaInput>& inputs) const override;

 private:
  std::unique_ptr<experts::Expert> expert_;
};

// How the CLI and server name a model: --model BUNDLE (a pipeline::ModelBundle directory, the unified
// space) or --expert NAME [--expert-weights P ...] for one expert's space.
struct EmbedderSpec {
  std::string model;  // bundle path
  std::string expert;
  experts::ExpertOptions expert_options;
  bool empty() const { return model.empty() && expert.empty(); }
};
std::unique_ptr<QueryEmbedder> make_query_embedder(const EmbedderSpec& spec);

}  // namespace omnibind::retrieval
