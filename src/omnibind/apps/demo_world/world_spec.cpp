#include "omnibind/apps/demo_world/world_spec.h"

#include <set>
#include <tuple>

#include "omnibind/apps/demo_world/world_rng.h"
#include "omnibind/common/error.h"

namespace omnibind::apps {

const std::vector<std::string>& shape2d_names() {
  static const std::vector<std::string> v{"circle", "square", "triangle", "diamond", "star", "ring", "cross", "hexagon"};
  return v;
}
const std::vector<std::string>& colour_names() {
  static const std::vector<std::string> v{"red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"};
  return v;
}
const std::vector<std::string>& texture_names() {
  static const std::vector<std::string> v{"plain", "striped", "dotted", "checkered"};
  return v;
}
const std::vector<std::string>& pitch_names() {
  static const std::vector<std::string> v{"low", "middle", "high", "shrill"};
  return v;
}
const std::vector<std::string>& contour_names() {
  static const std::vector<std::string> v{"steady", "rising", "falling", "wobbling"};
  return v;
}
const std::vector<std::string>& timbre_names() {
  static const std::vector<std::string> v{"pure", "bright", "hollow", "buzzing"};
  return v;
}
const std::vector<std::string>& rhythm_names() {
  static const std::vector<std::string> v{"continuous", "pulsing", "rattling", "double-beat"};
  return v;
}
const std::vector<std::string>& form_names() {
  static const std::vector<std::string> v{"sphere", "cube", "torus", "cone", "cylinder", "helix", "pyramid", "ellipsoid"};
  return v;
}
const std::vector<std::string>& proportion_names() {
  static const std::vector<std::string> v{"squat", "regular", "tall"};
  return v;
}

namespace {
const std::vector<std::string>& thing_names() {
  static const std::vector<std::string> v{
      "lantern", "pebble", "beacon", "spindle", "marble", "kettle", "cricket", "harp",
      "comet",   "acorn",  "bobbin", "thimble", "gong",   "whistle", "buoy",  "rattle",
      "prism",   "button", "locket", "trinket", "spool",  "chime",   "yoyo",  "fossil"};
  return v;
}
}  // namespace

WorldSpec make_world_spec(int n_classes, uint64_t seed) {
  if (n_classes < 2 || n_classes > static_cast<int>(thing_names().size()))
    throw InputError("demo world: --classes must be between 2 and " + std::to_string(thing_names().size()) +
                     ", got " + std::to_string(n_classes));
  WorldSpec world;
  world.seed = seed;
  WorldRng rng(seed);
  // Unique per modality: no two classes share the full look, the full sound or the full form.
  std::set<std::tuple<int, int, int>> looks;
  std::set<std::tuple<int, int, int, int>> sounds;
  std::set<std::pair<int, int>> forms;
  for (int c = 0; c < n_classes; ++c) {
    ClassSpec spec;
    spec.name = thing_names()[c];
    do {
      spec.shape2d = rng.below(static_cast<int>(shape2d_names().size()));
      spec.colour = rng.below(static_cast<int>(colour_names().size()));
      spec.texture = rng.below(static_cast<int>(texture_names().size()));
    } while (!looks.insert({spec.shape2d, spec.colour, spec.texture}).second);
    do {
      spec.pitch = rng.below(static_cast<int>(pitch_names().size()));
      spec.contour = rng.below(static_cast<int>(contour_names().size()));
      spec.timbre = rng.below(static_cast<int>(timbre_names().size()));
      spec.rhythm = rng.below(static_cast<int>(rhythm_names().size()));
    } while (!sounds.insert({spec.pitch, spec.contour, spec.timbre, spec.rhythm}).second);
    do {
      spec.form = rng.below(static_cast<int>(form_names().size()));
      spec.proportion = rng.below(static_cast<int>(proportion_names().size()));
    } while (!forms.insert({spec.form, spec.proportion}).second);
    world.classes.push_back(spec);
  }
  return world;
}

}  // namespace omnibind::apps
