// The simplest custom binding: every expert projected into the backbone (whose own embedding is a slot
// too, backbone_in_output), each modality's router reading every expert that embeds it, in expert order.
// The demo, the digits benchmark and the synthetic worlds bind their spaces this way.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"

namespace omnibind::binding {

// Validated; InputError on an inconsistent result (e.g. a backbone not among the experts).
BindingConfig every_expert_config(std::string name, std::vector<ExpertSpec> experts, std::string backbone,
                                  int64_t heads_per_space, int64_t projector_hidden, std::vector<int64_t> router_hidden);

}  // namespace omnibind::binding
