#include "omnibind/apps/demo/demo_scale.h"

#include "omnibind/common/error.h"

namespace omnibind::apps {

DemoScale demo_scale(const std::string& name) {
  DemoScale s;
  s.name = name;
  if (name == "full") return s;
  if (name == "small") {
    s.classes = 6;
    s.paired_instances = 24;
    s.pool_instances = 16;
    s.eval_instances = 6;
    s.zoo_epochs = 10;
    s.projector_epochs = 8;
    s.router_epochs = 8;
    s.heads = 2;
    s.projector_hidden = 128;
    s.locate_scenes = 4;
    return s;
  }
  throw InputError("--size " + name + ": use full or small");
}

}  // namespace omnibind::apps
