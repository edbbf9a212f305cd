// Router validation (issue 16; docs/reference/binding_training.md "Routers: validation and fallback"):
// learned routing must earn its place against uniform routing on pseudo tuples the routers never trained on.
//   - split_router_tuples: a seeded share of the tuples is held out from router training (the heads still
//     train on every tuple: they are frozen before the routers start);
//   - pseudo_retrieval_score: how well the unified embeddings of the held-out tuples find each other, mean
//     over every modality pair of the top-1 accuracy both ways within fixed chunks of the held-out set;
//   - shrink_router: the router's last layer scaled by alpha in [0, 1]: alpha 0 gives equal sigmoid scores,
//     hence exactly uniform routing (softmax of equal scores), alpha 1 the trained router.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::training {

struct RouterSplit {
  at::Tensor train;  // int64 tuple rows the routers train on (sorted)
  at::Tensor val;    // int64 held-out tuple rows (sorted); empty when fraction is 0 or there are too few tuples
};
// Holds out round(fraction * T) tuples (at least `min_val` of them, else none) chosen by `seed`.
RouterSplit split_router_tuples(int64_t tuples, double fraction, uint64_t seed, int64_t min_val = 64);

// unified: modality -> [V, D] unit rows of the same V held-out tuples; present: modality -> bool [V] (the tuple
// has a member of that modality). Mean over modality pairs of the top-1 accuracy (both directions) of finding
// the tuple's own member among the members of the same chunk of `chunk` tuples. In [0, 1].
double pseudo_retrieval_score(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                              int64_t chunk = 256);

// Routing weights of a modality from router scores s [B, S] (sigmoid outputs) as the inference model computes
// them: softmax(s * temperature) (temperature 10 for text, 1 otherwise).
at::Tensor weights_from_scores(const at::Tensor& scores, double temperature);

// The held-out tuples of one training run, ready to score any routing: per routed modality the frozen slot
// embeddings [V, S, D] and router inputs [V, in] of the held-out members, computed once.
class RouterValidation {
 public:
  using Inputs = std::function<std::pair<at::Tensor, at::Tensor>(const std::string& modality, const at::Tensor& rows)>;
  using Logits = std::function<at::Tensor(const std::string& modality, const at::Tensor& router_input)>;
  RouterValidation(const at::Tensor& val_rows, const std::vector<std::string>& modalities, const binding::BindingConfig& config,
                   const Inputs& inputs, const TupleSet& tuples);
  bool active() const { return active_; }
  // Score of routing every modality m with sigmoid(alpha_m * logits(m)) (alpha from `alpha`, else
  // `default_alpha`; 0 = uniform routing without calling `logits`).
  double score(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha) const;
  // The held-out members' routing weights [V, S] of `modality` with sigmoid(alpha * logits).
  at::Tensor weights(const std::string& modality, double alpha, const Logits& logits) const;

 private:
  bool active_ = false;
  double text_temperature_ = 10;
  std::map<std::string, at::Tensor> slots_, inputs_, present_;
};

}  // namespace omnibind::training
