// The "zoo" expert family: small encoders trained by `omnibind zoo train` (training/zoo/), one
// safetensors file per expert: the tensors of zoo_model.h plus __metadata__.zoo_config (JSON,
// zoo_config.h) and __metadata__.format = "omnibind-zoo". name() = "zoo", key() = the configured
// space name ("AT", "IT", ...). Inference is fp32, deterministic and thread-safe (read-only weights,
// InferenceMode, no mutable state).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "omnibind/experts/expert.h"
#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/experts/zoo/zoo_model.h"

namespace omnibind::experts::zoo {

struct ZooFile {
  ZooConfig config;
  ZooWeights weights;  // views into the mapped file
};

// InputError naming the path on a missing file, a file that is not a zoo expert, or bad tensors.
ZooFile read_zoo_file(const std::string& path);
// Atomic; tensors in zoo_parameter_shapes order; `extra_metadata` is stored alongside zoo_config.
void write_zoo_file(const std::string& path, const ZooConfig& config, const ZooWeights& weights,
                    const std::map<std::string, std::string>& extra_metadata = {});

class ZooExpert : public Expert {
 public:
  explicit ZooExpert(const ExpertOptions& options);           // options.weights = the zoo file
  ZooExpert(const ZooConfig& config, const ZooWeights& weights);  // in memory (e.g. fresh from training)
  const std::string& name() const override { return name_; }
  std::string key() const override { return model_.config.key; }
  std::vector<Modality> modalities() const override;
  int64_t dim() const override { return model_.config.dim; }
  at::Tensor preprocess(Modality m, const MediaInput& input) const override;
  at::Tensor encode(Modality m, const at::Tensor& batch) const override;

  const ZooConfig& config() const { return model_.config; }
  const ZooModel& model() const { return model_; }

 private:
  std::string name_ = "zoo";
  ZooWeights weights_;  // keeps the tensors the model points at alive
  ZooModel model_;
};

void register_zoo_expert();

}  // namespace omnibind::experts::zoo
