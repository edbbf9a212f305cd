// Scenes of the demo world for localisation with known answers: a larger canvas with several of the
// world's objects at known positions, each drawn as it is in the demo's images (render_look: the
// textured shape on its own small noisy patch, a "card"), plus distractors: blank cards with clutter
// blobs only, loose blobs on the canvas, and the other objects of the scene for each query.
#pragma once
#include <cstdint>
#include <vector>

#include "omnibind/apps/demo_world/world_media.h"
#include "omnibind/apps/demo_world/world_rng.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/media/image.h"

namespace omnibind::apps {

struct SceneBox {
  int x = 0, y = 0, w = 0, h = 0;  // pixels: [x, x + w) x [y, y + h)
};

struct SceneObject {
  int label = -1;  // class index
  SceneBox box;    // the card the object is drawn on (the true box)
};

struct Scene {
  media::Image image;
  std::vector<SceneObject> objects;   // distinct classes
  std::vector<SceneBox> blank_cards;  // distractor cards without an object
};

struct SceneOptions {
  int canvas = 160;                  // square canvas side in pixels
  int objects = 3;                   // objects of distinct classes (at most the world's classes)
  int blank_cards = 2;
  int loose_blobs = 6;
  double min_card = 0.2, max_card = 0.3;  // card side as a fraction of the canvas side
};

// Deterministic in the generator's state. InputError when the options are impossible (too many or too
// large cards to place without overlap, more objects than classes).
Scene make_scene(const WorldSpec& world, WorldRng& rng, const SceneOptions& options = {});

}  // namespace omnibind::apps
