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
#include "omnibind/training/embedding_pool.h"
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
// reciprocal_rank: mean reciprocal rank of the tuple's own member instead of top-1 accuracy (smoother: a
// routing that moves partners from rank 5 to rank 2 counts).
// pair_rows, when given: (modality a, modality b) with a < b -> bool [V], the rows that count for that pair
// (pairs missing from it are not scored).
using PairRows = std::map<std::pair<std::string, std::string>, at::Tensor>;
double pseudo_retrieval_score(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                              int64_t chunk = 256, const PairRows* pair_rows = nullptr, bool reciprocal_rank = false);

// The per-query outcomes behind pseudo_retrieval_score (one double tensor per scored pair, in pair order), their
// score (mean over pairs of the pair's mean), and the standard error of score(a) - score(b) for outcomes of two
// routings on the same queries (paired: only queries whose outcome differs add variance).
// involving, when given: only pairs with at least one of these modalities.
std::vector<at::Tensor> pair_outcomes(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                                      int64_t chunk, const PairRows* pair_rows, bool reciprocal_rank,
                                      const std::vector<std::string>* involving = nullptr);
double outcomes_score(const std::vector<at::Tensor>& outcomes);
double outcomes_difference_se(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b);

// Which member pairs of a tuple the miner linked by a direct hop: anchor slot -> unordered (slot, slot) pairs
// (smaller slot first) of its mining plan's hops. A pair not in it was linked only through other members.
using DirectHops = std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>>;
DirectHops direct_hops(const EmbeddingPool& pool, const TupleSet& tuples);

// For each modality pair of `modalities` (a < b), bool [V]: the held-out tuples `rows` that have both members
// and did not link them by a direct hop. Pairs with fewer than `min_rows` such tuples are left out.
PairRows indirect_pair_rows(const TupleSet& tuples, const at::Tensor& rows, const std::vector<std::string>& modalities,
                            const DirectHops& direct, int64_t min_rows);

// Routing weights of a modality from router scores s [B, S] (sigmoid outputs) as the inference model computes
// them: softmax(s * temperature) (temperature 10 for text, 1 otherwise).
at::Tensor weights_from_scores(const at::Tensor& scores, double temperature);

// The held-out tuples of one training run, ready to score any routing: per routed modality the frozen slot
// embeddings [V, S, D] and router inputs [V, in] of the held-out members, computed once.
class RouterValidation {
 public:
  using Inputs = std::function<std::pair<at::Tensor, at::Tensor>(const std::string& modality, const at::Tensor& rows)>;
  using Logits = std::function<at::Tensor(const std::string& modality, const at::Tensor& router_input)>;
  // direct: when given, each modality pair is scored only on the held-out tuples whose miner did not link it
  // by a direct hop (see indirect_pair_rows; when no pair has enough of them, every pair on every tuple).
  RouterValidation(const at::Tensor& val_rows, const std::vector<std::string>& modalities, const binding::BindingConfig& config,
                   const Inputs& inputs, const TupleSet& tuples, const DirectHops* direct = nullptr);
  // Per scored pair, the outcome of every query (1/0 hit, or reciprocal rank), both directions: score() is the
  // mean over pairs of their means. Two routings' outcomes on the same queries give a paired difference.
  std::vector<at::Tensor> outcomes(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha) const;
  // (with the noise metric: every identified modality's noise outcomes, then the retrieval pairs of the others)
  // Score with the mean reciprocal rank instead of top-1 accuracy (see pseudo_retrieval_score).
  void use_reciprocal_rank(bool on) { reciprocal_rank_ = on; }
  // Score with minus the routed embeddings' estimated error variance (slot_noise.h) relative to uniform routing's,
  // one outcome per held-out member, for every modality whose slot noise is identified (>= 3 slots); the pairs of
  // the other modalities keep pseudo-tuple retrieval.
  void use_noise(bool on) { noise_metric_ = on; }
  bool noise_identified(const std::string& modality) const { return noise_.count(modality) > 0; }
  // The outcomes a change of `modality`'s routing can move: with the noise metric and the modality identified, its
  // members' noise outcomes; with the noise metric otherwise, the retrieval pairs it takes part in; else outcomes().
  std::vector<at::Tensor> outcomes_for(const std::string& modality, const std::map<std::string, double>& alpha, const Logits& logits,
                                       double default_alpha) const;
  // Pairs scored only on indirectly linked tuples (empty: every pair on every tuple).
  const PairRows& pair_rows() const { return pair_rows_; }
  bool active() const { return active_; }
  // Score of routing every modality m with sigmoid(alpha_m * logits(m)) (alpha from `alpha`, else
  // `default_alpha`; 0 = uniform routing without calling `logits`).
  double score(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha) const;
  // The held-out members' routing weights [V, S] of `modality` with sigmoid(alpha * logits).
  at::Tensor weights(const std::string& modality, double alpha, const Logits& logits) const;

 private:
  bool active_ = false;
  double text_temperature_ = 10;
  bool reciprocal_rank_ = false, noise_metric_ = false;
  std::map<std::string, at::Tensor> slots_, inputs_, present_;
  std::map<std::string, at::Tensor> noise_;        // per modality with >= 3 slots: [V, S] slot error variances
  std::map<std::string, double> uniform_noise_;    // its uniform routing's mean mixture variance
  std::vector<at::Tensor> noise_outcomes(const std::string& m, const std::map<std::string, double>& alpha, const Logits& logits,
                                         double default_alpha) const;
  std::vector<at::Tensor> retrieval_outcomes(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha,
                                             const std::vector<std::string>* involving) const;
  PairRows pair_rows_;
};

}  // namespace omnibind::training
