#include "omnibind/pipeline/random_heads.h"

#include <ATen/ATen.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"

namespace omnibind::pipeline {

std::vector<std::pair<std::string, at::Tensor>> random_official_heads(const binding::BindingConfig& config,
                                                                      const RandomHeadsOptions& options) {
  config.validate();
  auto dim_of = [&](const std::string& name) {
    const binding::ExpertSpec* e = config.find(name);
    require(e && e->dim > 0, "random heads: expert '" + name + "' needs a dim in the binding config");
    return e->dim;
  };
  const int64_t K = options.heads_per_space > 0 ? options.heads_per_space : config.heads_per_space;
  const int64_t H = options.hidden > 0 ? options.hidden : config.projector_hidden;
  const int64_t D = dim_of(config.backbone);
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  std::vector<std::pair<std::string, at::Tensor>> sd;
  auto randn = [&](std::vector<int64_t> shape, double scale) { return at::randn(shape, gen) * scale; };
  auto rand = [&](int64_t n, double lo, double width) { return at::rand({n}, gen) * width + lo; };
  auto linear = [&](const std::string& p, int64_t out, int64_t in) {
    sd.emplace_back(p + ".weight", randn({out, in}, 1.0 / std::sqrt(double(in))));
    sd.emplace_back(p + ".bias", randn({out}, 0.05));
  };
  auto bn = [&](const std::string& p, int64_t c) {
    sd.emplace_back(p + ".weight", rand(c, 0.5, 1.0));
    sd.emplace_back(p + ".bias", randn({c}, 0.1));
    sd.emplace_back(p + ".running_mean", randn({c}, 0.1));
    sd.emplace_back(p + ".running_var", rand(c, 0.5, 1.0));
    sd.emplace_back(p + ".num_batches_tracked", at::full({}, 1000, at::kLong));
  };
  auto head = [&](const std::string& p, int64_t in) {
    linear(p + "0", H, in);
    bn(p + "1", H);
    linear(p + "3", D, H);
    bn(p + "4", D);
  };
  int64_t n = 0;
  for (auto* e : config.projected_experts())
    for (int64_t k = 0; k < K; ++k) head("projs." + std::to_string(n++) + ".Head2.mlps.", dim_of(e->name));
  if (config.has_imagebind())
    for (int64_t k = 0; k < K; ++k) head("ib_projs." + std::to_string(k) + ".Head2.mlps.", dim_of(binding::BindingConfig::kImageBind));
  const int64_t R1 = config.router_hidden.at(0), R2 = config.router_hidden.at(1);
  for (auto& m : binding::all_modalities()) {
    auto slots = config.slots(m);
    if (slots.empty()) continue;
    int64_t in = 0;
    for (auto& name : config.router_inputs.at(m)) in += dim_of(name);
    const std::string p = binding::router_prefix(m);
    linear(p + "0", R1, in);
    bn(p + "1", R1);
    linear(p + "3", R2, R1);
    bn(p + "4", R2);
    linear(p + "6", static_cast<int64_t>(slots.size()), R2);
  }
  return sd;
}

}  // namespace omnibind::pipeline
