// The list of expert families compiled into the binary. Add one line per family.
#include "omnibind/experts/expert.h"

namespace omnibind::experts {
void register_imagebind_expert();
void register_precomputed_expert();
void register_wavcaps_expert();
void register_clap_expert();
namespace uni3d { void register_uni3d_expert(); }
namespace zoo { void register_zoo_expert(); }

void register_builtin_experts() {
  register_imagebind_expert();
  register_precomputed_expert();
  uni3d::register_uni3d_expert();
  zoo::register_zoo_expert();
  register_wavcaps_expert();
  register_clap_expert();
  // Families register here, e.g. register_imagebind_expert(); register_uni3d_expert();
}

}  // namespace omnibind::experts
