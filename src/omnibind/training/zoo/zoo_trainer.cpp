#include "omnibind/training/zoo/zoo_trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::training::zoo {
namespace {

const double kMaxLogitScale = std::log(100.0);

// Symmetric soft-target InfoNCE between rows of a and b (unit rows, same items in the same order).
at::Tensor pair_loss(const at::Tensor& a, const at::Tensor& b, const at::Tensor& groups, const at::Tensor& logit_scale) {
  at::Tensor logits = logit_scale.exp() * at::matmul(a, b.t());
  at::Tensor same = groups.unsqueeze(1).eq(groups.unsqueeze(0)).to(at::kFloat);
  at::Tensor targets = same / same.sum(1, true);
  at::Tensor l_ab = -(targets * at::log_softmax(logits, 1)).sum(1).mean();
  at::Tensor l_ba = -(targets * at::log_softmax(logits.t(), 1)).sum(1).mean();
  return 0.5 * (l_ab + l_ba);
}

}  // namespace

int64_t ZooPairedData::items() const { return inputs.empty() ? 0 : inputs.begin()->second.size(0); }

experts::zoo::ZooWeights train_zoo_expert(const experts::zoo::ZooConfig& config, const ZooPairedData& data,
                                          const ZooTrainOptions& o, const ZooProgressFn& progress) {
  using namespace experts::zoo;
  require(o.epochs > 0 && o.batch > 1 && o.lr > 0.0, "zoo train: epochs must be >= 1, batch >= 2, lr > 0");
  require(data.inputs.size() >= 2, "zoo train: needs at least two modalities of paired data");
  const int64_t n = data.items();
  require(n >= 2, "zoo train: needs at least 2 items");
  std::vector<std::string> mods;
  std::map<std::string, at::Tensor> present;
  for (auto& [m, t] : data.inputs) {
    require(config.has(m), "zoo train: data has " + m + " inputs but the expert has no " + m + " tower");
    require(t.defined() && t.size(0) == n, "zoo train: " + m + " inputs must have " + std::to_string(n) + " rows");
    mods.push_back(m);
    auto p = data.present.find(m);
    present[m] = p == data.present.end() ? at::ones({n}, at::kBool) : p->second.to(at::kBool);
    require(present[m].numel() == n, "zoo train: present[" + m + "] must have " + std::to_string(n) + " entries");
  }
  at::Tensor groups = data.group.defined() ? data.group.to(at::kLong) : at::arange(n, at::kLong);
  require(groups.numel() == n, "zoo train: group must have one id per item");
  if (o.threads > 0) tensor_io::set_compute_threads(o.threads);

  ZooWeights weights = init_zoo_weights(config, o.seed);
  std::vector<at::Tensor> params;
  for (auto& [name, shape] : zoo_parameter_shapes(config)) {
    weights[name].requires_grad_(true);
    params.push_back(weights[name]);
  }
  ZooModel model = ZooModel::bind(config, weights, "zoo train");
  torch::optim::Adam adam(params, torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));

  std::mt19937_64 rng(o.seed ^ 0x9E3779B97F4A7C15ull);
  std::vector<int64_t> order(n);
  bool any_pair = false;
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[std::uniform_int_distribution<int64_t>(0, i)(rng)]);
    double loss_sum = 0.0;
    int64_t loss_count = 0;
    for (int64_t start = 0; start + 1 < n; start += o.batch) {
      const int64_t end = std::min(n, start + o.batch);
      at::Tensor idx = at::from_blob(order.data() + start, {end - start}, at::kLong).clone();
      std::map<std::string, at::Tensor> emb, mask;
      for (auto& m : mods) {
        mask[m] = present[m].index_select(0, idx);
        at::Tensor rows = idx.masked_select(mask[m]);
        if (rows.numel() > 0) emb[m] = model.forward(m, data.inputs.at(m).index_select(0, rows));
      }
      at::Tensor total;
      int64_t weight = 0;
      for (size_t a = 0; a < mods.size(); ++a)
        for (size_t b = a + 1; b < mods.size(); ++b) {
          const auto& ma = mods[a];
          const auto& mb = mods[b];
          if (!emb.count(ma) || !emb.count(mb)) continue;
          at::Tensor both = mask[ma].logical_and(mask[mb]);
          const int64_t k = both.sum().item<int64_t>();
          if (k < 2) continue;
          // Positions of the shared rows inside each modality's embedded subset.
          at::Tensor pos_a = mask[ma].to(at::kLong).cumsum(0).sub(1).masked_select(both);
          at::Tensor pos_b = mask[mb].to(at::kLong).cumsum(0).sub(1).masked_select(both);
          at::Tensor g = groups.index_select(0, idx.masked_select(both));
          at::Tensor l = pair_loss(emb[ma].index_select(0, pos_a), emb[mb].index_select(0, pos_b), g, model.logit_scale);
          total = total.defined() ? total + l * static_cast<double>(k) : l * static_cast<double>(k);
          weight += k;
        }
      if (!total.defined()) continue;
      any_pair = true;
      at::Tensor loss = total / static_cast<double>(weight);
      adam.zero_grad();
      loss.backward();
      adam.step();
      {
        at::NoGradGuard ng;
        model.logit_scale.clamp_(0.0, kMaxLogitScale);
      }
      loss_sum += loss.item<double>();
      ++loss_count;
    }
    require(any_pair, "zoo train: no item has two of the modalities (nothing to contrast)");
    if (progress) {
      ZooTrainProgress p;
      p.epoch = epoch;
      p.epochs = o.epochs;
      p.loss = loss_count ? loss_sum / static_cast<double>(loss_count) : 0.0;
      p.temperature = 1.0 / std::exp(model.logit_scale.item<double>());
      progress(p);
    }
  }
  ZooWeights out;
  for (auto& [name, t] : weights) out[name] = t.detach().clone();
  return out;
}

}  // namespace omnibind::training::zoo
