// How big the demo's world and training runs are. "full" is what `omnibind demo` runs by default (a few
// minutes on 2 cores); "small" is the same recipe shrunk to seconds for tests.
#pragma once
#include <cstdint>
#include <string>

namespace omnibind::apps {

struct DemoScale {
  std::string name;
  int classes = 10;
  int paired_instances = 40;  // per class, for training the zoo experts (paired data)
  int pool_instances = 30;    // per class and modality, unpaired pools for binding
  int eval_instances = 10;    // per class, held-out true tuples for evaluation and search
  int zoo_epochs = 12;
  int projector_epochs = 10;
  int router_epochs = 10;
  int heads = 3;
  int64_t projector_hidden = 256;
  int locate_scenes = 12;     // localisation scenes (demo_locate.h)
};

// "full" | "small"; InputError naming the valid sizes otherwise.
DemoScale demo_scale(const std::string& name);

}  // namespace omnibind::apps
