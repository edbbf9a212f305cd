// Random OmniBind heads and routers in the official state-dict layout for any binding config whose
// experts declare their dims: small models for tests, demos and benchmarks (seeded, deterministic).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/binding/binding_config.h"

namespace omnibind::pipeline {

struct RandomHeadsOptions {
  int64_t heads_per_space = 0;  // 0 = config.heads_per_space
  int64_t hidden = 0;           // 0 = config.projector_hidden
  uint64_t seed = 0;
};

// Keys projs.N.Head2.mlps.{0,1,3,4}.*, ib_projs.N..., {A,V,P,T}_enc_router.router.{0,1,3,4,6}.*
// (BatchNorm with non-trivial running statistics). The unified dim is the backbone's dim.
// InputError when an expert the heads or routers need has no dim.
std::vector<std::pair<std::string, at::Tensor>> random_official_heads(const binding::BindingConfig& config,
                                                                      const RandomHeadsOptions& options = {});

}  // namespace omnibind::pipeline
