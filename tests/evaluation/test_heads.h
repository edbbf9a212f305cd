// Random projector heads and routers in the official state-dict layout for any config whose experts
// declare their dims (BatchNorm at identity statistics): a stand-in checkpoint for table/CLI tests.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/binding/omnibind_model.h"

namespace omnibind::evaltest {

inline std::vector<std::pair<std::string, at::Tensor>> random_heads(const binding::BindingConfig& c, uint64_t seed) {
  at::manual_seed(seed);
  std::vector<std::pair<std::string, at::Tensor>> sd;
  auto dim = [&](const std::string& n) { return c.find(n)->dim; };
  auto linear = [&](const std::string& p, int64_t out, int64_t in) {
    sd.emplace_back(p + ".weight", at::randn({out, in}) / std::sqrt(double(in)));
    sd.emplace_back(p + ".bias", at::zeros({out}));
  };
  auto bn = [&](const std::string& p, int64_t n) {
    sd.emplace_back(p + ".weight", at::ones({n}));
    sd.emplace_back(p + ".bias", at::zeros({n}));
    sd.emplace_back(p + ".running_mean", at::zeros({n}));
    sd.emplace_back(p + ".running_var", at::ones({n}));
    sd.emplace_back(p + ".num_batches_tracked", at::zeros({}, at::kLong));
  };
  const int64_t D = dim(c.backbone), H = c.projector_hidden;
  int64_t idx = 0;
  for (auto* e : c.projected_experts())
    for (int64_t k = 0; k < c.heads_per_space; ++k) {
      const std::string p = "projs." + std::to_string(idx++) + ".Head2.mlps.";
      linear(p + "0", H, e->dim);
      bn(p + "1", H);
      linear(p + "3", D, H);
      bn(p + "4", D);
    }
  for (auto& m : binding::all_modalities()) {
    auto slots = c.slots(m);
    if (slots.empty()) continue;
    int64_t in = 0;
    for (auto& n : c.router_inputs.at(m)) in += dim(n);
    const std::string p = binding::router_prefix(m);
    linear(p + "0", c.router_hidden[0], in);
    bn(p + "1", c.router_hidden[0]);
    linear(p + "3", c.router_hidden[1], c.router_hidden[0]);
    bn(p + "4", c.router_hidden[1]);
    linear(p + "6", static_cast<int64_t>(slots.size()), c.router_hidden[1]);
  }
  return sd;
}

}  // namespace omnibind::evaltest
