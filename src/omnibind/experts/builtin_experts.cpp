// The list of expert families compiled into the binary. Add one line per family.
#include "omnibind/experts/expert.h"

namespace omnibind::experts {

void register_builtin_experts() {
  // Families register here, e.g. register_imagebind_expert(); register_uni3d_expert();
}

}  // namespace omnibind::experts
