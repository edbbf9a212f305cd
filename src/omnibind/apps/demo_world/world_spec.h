// The procedurally generated world of the demo: classes of things, each with a look (a 2-D shape,
// colour and texture), a sound (pitch, contour, timbre, rhythm), a 3-D form and a name. Attributes
// are drawn so that every class is unique in every modality while pairs of classes share some
// attributes (two classes may look alike and sound different), which is what makes single experts
// imperfect in different ways.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace omnibind::apps {

// Attribute vocabularies (the words captions use). Index = the attribute value.
const std::vector<std::string>& shape2d_names();   // circle, square, triangle, ...
const std::vector<std::string>& colour_names();    // red, orange, ...
const std::vector<std::string>& texture_names();   // plain, striped, dotted, checkered
const std::vector<std::string>& pitch_names();     // low, middle, high, shrill
const std::vector<std::string>& contour_names();   // steady, rising, falling, wobbling
const std::vector<std::string>& timbre_names();    // pure, bright, hollow, buzzing
const std::vector<std::string>& rhythm_names();    // continuous, pulsing, rattling, double-beat
const std::vector<std::string>& form_names();      // sphere, cube, torus, cone, cylinder, helix, pyramid, ellipsoid
const std::vector<std::string>& proportion_names();// squat, regular, tall

struct ClassSpec {
  std::string name;                                 // "lantern"
  int shape2d = 0, colour = 0, texture = 0;         // look
  int pitch = 0, contour = 0, timbre = 0, rhythm = 0;  // sound
  int form = 0, proportion = 0;                     // 3-D form
};

struct WorldSpec {
  uint64_t seed = 0;
  std::vector<ClassSpec> classes;
};

// n_classes in [2, 24]; the same seed gives the same world.
WorldSpec make_world_spec(int n_classes, uint64_t seed);

}  // namespace omnibind::apps
