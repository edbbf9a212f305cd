#include "omnibind/training/router_validation.h"

#include "omnibind/training/slot_noise.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

namespace omnibind::training {

RouterSplit split_router_tuples(int64_t tuples, double fraction, uint64_t seed, int64_t min_val) {
  RouterSplit s;
  const int64_t v = fraction > 0 ? static_cast<int64_t>(std::llround(fraction * static_cast<double>(tuples))) : 0;
  if (v < min_val || tuples - v < 2) {
    s.train = at::arange(tuples, at::kLong);
    s.val = at::empty({0}, at::kLong);
    return s;
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor perm = at::randperm(tuples, gen, at::kLong);
  s.val = std::get<0>(perm.narrow(0, 0, v).sort());
  s.train = std::get<0>(perm.narrow(0, v, tuples - v).sort());
  return s;
}

std::vector<at::Tensor> pair_outcomes(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                                      int64_t chunk, const PairRows* pair_rows, bool reciprocal_rank,
                                      const std::vector<std::string>* involving) {
  std::vector<std::string> mods;
  for (const auto& [m, _] : unified) mods.push_back(m);
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < mods.size(); ++i)
    for (size_t j = i + 1; j < mods.size(); ++j) {
      if (involving && std::find(involving->begin(), involving->end(), mods[i]) == involving->end() &&
          std::find(involving->begin(), involving->end(), mods[j]) == involving->end())
        continue;
      at::Tensor keep = present.at(mods[i]).logical_and(present.at(mods[j]));
      if (pair_rows) {
        auto it = pair_rows->find({mods[i], mods[j]});
        if (it == pair_rows->end()) continue;
        keep = keep.logical_and(it->second);
      }
      const at::Tensor both = keep.nonzero().squeeze(1);
      const int64_t n = both.size(0);
      if (n < 2) continue;
      const at::Tensor a = unified.at(mods[i]).index_select(0, both), b = unified.at(mods[j]).index_select(0, both);
      std::vector<at::Tensor> parts;
      for (int64_t c = 0; c < n; c += chunk) {
        const int64_t len = std::min(chunk, n - c);
        if (len < 2) break;  // a last chunk of one tuple has nothing to confuse it with
        const at::Tensor sims = at::mm(a.narrow(0, c, len), b.narrow(0, c, len).t());
        if (reciprocal_rank) {  // rank of the own member = 1 + members scoring strictly higher, both ways
          const at::Tensor own = sims.diagonal();
          parts.push_back(sims.gt(own.unsqueeze(1)).sum(1).add(1).to(at::kDouble).reciprocal());
          parts.push_back(sims.gt(own.unsqueeze(0)).sum(0).add(1).to(at::kDouble).reciprocal());
          continue;
        }
        const at::Tensor target = at::arange(len, at::kLong);
        parts.push_back(sims.argmax(1).eq(target).to(at::kDouble));
        parts.push_back(sims.argmax(0).eq(target).to(at::kDouble));
      }
      out.push_back(at::cat(parts));
    }
  return out;
}

double outcomes_score(const std::vector<at::Tensor>& outcomes) {
  double sum = 0;
  for (const auto& o : outcomes) sum += o.mean().item<double>();
  return outcomes.empty() ? 0 : sum / static_cast<double>(outcomes.size());
}

double outcomes_difference_se(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double var = 0;
  for (size_t p = 0; p < a.size(); ++p) {
    const at::Tensor d = a[p] - b[p];
    const double n = static_cast<double>(d.size(0));
    if (n < 2) continue;
    var += d.var().item<double>() / n;  // variance of the pair's mean difference
  }
  return std::sqrt(var) / static_cast<double>(a.size());
}

double pseudo_retrieval_score(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                              int64_t chunk, const PairRows* pair_rows, bool reciprocal_rank) {
  return outcomes_score(pair_outcomes(unified, present, chunk, pair_rows, reciprocal_rank));
}

DirectHops direct_hops(const EmbeddingPool& pool, const TupleSet& tuples) {
  DirectHops direct;
  if (tuples.size() == 0) return direct;
  const at::Tensor anchors = std::get<0>(at::_unique(tuples.anchor));
  for (int64_t i = 0; i < anchors.size(0); ++i) {
    const int64_t a = anchors[i].item<int64_t>();
    auto& pairs = direct[a];
    for (const auto& hop : mining_plan(pool, tuple_modalities().at(static_cast<size_t>(a)))) {
      const int64_t x = tuple_slot(hop.from), y = tuple_slot(hop.to);
      pairs.emplace_back(std::min(x, y), std::max(x, y));
    }
  }
  return direct;
}

PairRows indirect_pair_rows(const TupleSet& tuples, const at::Tensor& rows, const std::vector<std::string>& modalities,
                            const DirectHops& direct, int64_t min_rows) {
  PairRows out;
  const at::Tensor anchor = tuples.anchor.index_select(0, rows);
  const at::Tensor index = tuples.index.index_select(0, rows);
  std::vector<std::string> mods = modalities;
  std::sort(mods.begin(), mods.end());  // the order pseudo_retrieval_score walks pairs in (map keys)
  for (size_t i = 0; i < mods.size(); ++i)
    for (size_t j = i + 1; j < mods.size(); ++j) {
      const int64_t x = tuple_slot(mods[i]), y = tuple_slot(mods[j]);
      const std::pair<int64_t, int64_t> key{std::min(x, y), std::max(x, y)};
      at::Tensor linked = at::zeros({rows.size(0)}, at::kBool);
      for (const auto& [a, pairs] : direct)
        if (std::find(pairs.begin(), pairs.end(), key) != pairs.end()) linked.logical_or_(anchor.eq(a));
      at::Tensor keep = index.select(1, x).select(1, 0).ge(0).logical_and(index.select(1, y).select(1, 0).ge(0)).logical_and(linked.logical_not());
      if (keep.sum().item<int64_t>() >= min_rows) out[{mods[i], mods[j]}] = keep;
    }
  return out;
}

RouterValidation::RouterValidation(const at::Tensor& val_rows, const std::vector<std::string>& modalities,
                                   const binding::BindingConfig& config, const Inputs& inputs, const TupleSet& tuples,
                                   const DirectHops* direct) {
  text_temperature_ = config.text_temperature;
  if (val_rows.numel() == 0 || modalities.size() < 2) return;
  for (const auto& m : modalities) {
    auto [slots, in] = inputs(m, val_rows);
    slots_[m] = slots;
    inputs_[m] = in;
    present_[m] = tuples.index.index_select(0, val_rows).select(1, tuple_slot(m)).select(1, 0).ge(0);
    const at::Tensor members = present_[m].nonzero().squeeze(1);
    at::Tensor noise = slot_noise_variance(slots.index_select(0, members));
    if (noise.defined() && members.size(0) >= 2) {
      const int64_t S = noise.size(1);
      const double uniform = mixture_noise(at::full_like(noise, 1.0 / static_cast<double>(S)), noise).mean().item<double>();
      if (uniform > 0) noise_[m] = noise, uniform_noise_[m] = uniform;
    }
  }
  // A pair scored on a few dozen tuples would be noise: at least 32 indirectly linked tuples per pair.
  if (direct) pair_rows_ = indirect_pair_rows(tuples, val_rows, modalities, *direct, 32);
  active_ = true;
}

at::Tensor RouterValidation::weights(const std::string& modality, double alpha, const Logits& logits) const {
  const at::Tensor& in = inputs_.at(modality);
  const double t = modality == "text" ? text_temperature_ : 1.0;
  if (alpha == 0) return weights_from_scores(at::full({in.size(0), slots_.at(modality).size(1)}, 0.5), t);
  return weights_from_scores(at::sigmoid(logits(modality, in) * alpha), t);
}

std::vector<at::Tensor> RouterValidation::noise_outcomes(const std::string& m, const std::map<std::string, double>& alpha,
                                                        const Logits& logits, double default_alpha) const {
  auto it = alpha.find(m);
  const double a = it == alpha.end() ? default_alpha : it->second;
  const at::Tensor members = present_.at(m).nonzero().squeeze(1);
  const at::Tensor w = weights(m, a, logits).index_select(0, members);
  return {mixture_noise(w, noise_.at(m)).to(at::kDouble).neg().div(uniform_noise_.at(m))};
}

std::vector<at::Tensor> RouterValidation::retrieval_outcomes(const std::map<std::string, double>& alpha, const Logits& logits,
                                                            double default_alpha, const std::vector<std::string>* involving) const {
  std::map<std::string, at::Tensor> unified;
  for (const auto& [m, slots] : slots_) {
    auto it = alpha.find(m);
    const double a = it == alpha.end() ? default_alpha : it->second;
    const at::Tensor u = a == 0 ? slots.mean(1) : (slots * weights(m, a, logits).unsqueeze(2)).sum(1);
    unified[m] = u / u.norm(2, -1, true).clamp_min(1e-12);
  }
  return pair_outcomes(unified, present_, 256, pair_rows_.empty() ? nullptr : &pair_rows_, reciprocal_rank_, involving);
}

std::vector<at::Tensor> RouterValidation::outcomes(const std::map<std::string, double>& alpha, const Logits& logits,
                                                  double default_alpha) const {
  if (!noise_metric_) return retrieval_outcomes(alpha, logits, default_alpha, nullptr);
  std::vector<at::Tensor> out;
  std::vector<std::string> unidentified;
  for (const auto& [m, _] : slots_) {
    if (!noise_identified(m)) {
      unidentified.push_back(m);
      continue;
    }
    for (auto& o : noise_outcomes(m, alpha, logits, default_alpha)) out.push_back(o);
  }
  if (!unidentified.empty())
    for (auto& o : retrieval_outcomes(alpha, logits, default_alpha, &unidentified)) out.push_back(o);
  return out;
}

std::vector<at::Tensor> RouterValidation::outcomes_for(const std::string& modality, const std::map<std::string, double>& alpha,
                                                      const Logits& logits, double default_alpha) const {
  if (!noise_metric_) return outcomes(alpha, logits, default_alpha);
  if (noise_identified(modality)) return noise_outcomes(modality, alpha, logits, default_alpha);
  const std::vector<std::string> only{modality};
  return retrieval_outcomes(alpha, logits, default_alpha, &only);
}

double RouterValidation::score(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha) const {
  return outcomes_score(outcomes(alpha, logits, default_alpha));
}

at::Tensor weights_from_scores(const at::Tensor& scores, double temperature) { return at::softmax(scores * temperature, -1); }

}  // namespace omnibind::training
