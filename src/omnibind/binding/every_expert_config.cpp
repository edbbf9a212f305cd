#include "omnibind/binding/every_expert_config.h"

namespace omnibind::binding {

BindingConfig every_expert_config(std::string name, std::vector<ExpertSpec> experts, std::string backbone,
                                  int64_t heads_per_space, int64_t projector_hidden, std::vector<int64_t> router_hidden) {
  BindingConfig c;
  c.name = std::move(name);
  c.experts = std::move(experts);
  c.backbone = std::move(backbone);
  c.backbone_in_output = true;
  c.heads_per_space = heads_per_space;
  c.projector_hidden = projector_hidden;
  c.router_hidden = std::move(router_hidden);
  for (const auto& m : all_modalities())
    for (const auto& e : c.experts)
      if (e.covers(m)) c.router_inputs[m].push_back(e.name);
  c.validate();
  return c;
}

}  // namespace omnibind::binding
