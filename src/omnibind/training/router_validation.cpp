#include "omnibind/training/router_validation.h"

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

double pseudo_retrieval_score(const std::map<std::string, at::Tensor>& unified, const std::map<std::string, at::Tensor>& present,
                              int64_t chunk) {
  std::vector<std::string> mods;
  for (const auto& [m, _] : unified) mods.push_back(m);
  double sum = 0;
  int64_t pairs = 0;
  for (size_t i = 0; i < mods.size(); ++i)
    for (size_t j = i + 1; j < mods.size(); ++j) {
      const at::Tensor both = present.at(mods[i]).logical_and(present.at(mods[j])).nonzero().squeeze(1);
      const int64_t n = both.size(0);
      if (n < 2) continue;
      const at::Tensor a = unified.at(mods[i]).index_select(0, both), b = unified.at(mods[j]).index_select(0, both);
      double hits = 0;
      for (int64_t c = 0; c < n; c += chunk) {
        const int64_t len = std::min(chunk, n - c);
        if (len < 2) break;
        const at::Tensor sims = at::mm(a.narrow(0, c, len), b.narrow(0, c, len).t());
        const at::Tensor target = at::arange(len, at::kLong);
        hits += sims.argmax(1).eq(target).sum().item<double>() + sims.argmax(0).eq(target).sum().item<double>();
      }
      sum += hits / (2.0 * static_cast<double>(n - (n % chunk < 2 ? n % chunk : 0)));
      ++pairs;
    }
  return pairs > 0 ? sum / static_cast<double>(pairs) : 0;
}

RouterValidation::RouterValidation(const at::Tensor& val_rows, const std::vector<std::string>& modalities,
                                   const binding::BindingConfig& config, const Inputs& inputs, const TupleSet& tuples) {
  text_temperature_ = config.text_temperature;
  if (val_rows.numel() == 0 || modalities.size() < 2) return;
  for (const auto& m : modalities) {
    auto [slots, in] = inputs(m, val_rows);
    slots_[m] = slots;
    inputs_[m] = in;
    present_[m] = tuples.index.index_select(0, val_rows).select(1, tuple_slot(m)).select(1, 0).ge(0);
  }
  active_ = true;
}

at::Tensor RouterValidation::weights(const std::string& modality, double alpha, const Logits& logits) const {
  const at::Tensor& in = inputs_.at(modality);
  const double t = modality == "text" ? text_temperature_ : 1.0;
  if (alpha == 0) return weights_from_scores(at::full({in.size(0), slots_.at(modality).size(1)}, 0.5), t);
  return weights_from_scores(at::sigmoid(logits(modality, in) * alpha), t);
}

double RouterValidation::score(const std::map<std::string, double>& alpha, const Logits& logits, double default_alpha) const {
  std::map<std::string, at::Tensor> unified;
  for (const auto& [m, slots] : slots_) {
    auto it = alpha.find(m);
    const double a = it == alpha.end() ? default_alpha : it->second;
    const at::Tensor u = a == 0 ? slots.mean(1) : (slots * weights(m, a, logits).unsqueeze(2)).sum(1);
    unified[m] = u / u.norm(2, -1, true).clamp_min(1e-12);
  }
  return pseudo_retrieval_score(unified, present_);
}

at::Tensor weights_from_scores(const at::Tensor& scores, double temperature) { return at::softmax(scores * temperature, -1); }

}  // namespace omnibind::training
