// The "imagebind" expert: images, audio and text into ImageBind's joint space.
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"

namespace omnibind::experts {

void register_imagebind_expert();

// Built directly (tests, benchmarks); the registry calls this too.
std::unique_ptr<Expert> make_imagebind_expert(const ExpertOptions& options);

}  // namespace omnibind::experts
