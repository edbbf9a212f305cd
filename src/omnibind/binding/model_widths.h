// Input widths of a model being loaded, shared by the official-layout loader (omnibind_model.cpp) and the
// pre-folded one (folded_model.cpp): the widths come from the heads found, plus the config's declared
// dims for router inputs that have no heads.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "omnibind/binding/binding_config.h"

namespace omnibind::binding {

// InputError when an expert's declared dim disagrees with the width its heads take (`heads` names them
// in the message, e.g. "the checkpoint's heads").
void check_declared_widths(const BindingConfig& config, const std::map<std::string, int64_t>& widths,
                           const std::string& source, const std::string& heads);

// The summed width of a modality's router inputs. An input without heads (custom configs only) takes its
// width from the config and is added to `widths`; InputError when the config has none.
int64_t router_input_width(const BindingConfig& config, const std::string& modality,
                           std::map<std::string, int64_t>& widths, const std::string& source);

}  // namespace omnibind::binding
