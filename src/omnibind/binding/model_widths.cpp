#include "omnibind/binding/model_widths.h"

#include "omnibind/common/error.h"

namespace omnibind::binding {

void check_declared_widths(const BindingConfig& config, const std::map<std::string, int64_t>& widths,
                           const std::string& source, const std::string& heads) {
  for (const auto& e : config.experts) {
    auto it = widths.find(e.name);
    if (e.dim > 0 && it != widths.end())
      require(e.dim == it->second, source + ": config declares " + e.name + " dim " + std::to_string(e.dim) + " but " +
                                       heads + " take " + std::to_string(it->second));
  }
}

int64_t router_input_width(const BindingConfig& config, const std::string& modality,
                           std::map<std::string, int64_t>& widths, const std::string& source) {
  int64_t in = 0;
  for (const auto& n : config.router_inputs.at(modality)) {
    auto it = widths.find(n);
    if (it == widths.end()) {
      const ExpertSpec* e = config.find(n);
      require(e && e->dim > 0, source + ": router input '" + n + "' for " + modality + " has no known width; set its dim");
      it = widths.emplace(n, e->dim).first;
    }
    in += it->second;
  }
  return in;
}

}  // namespace omnibind::binding
