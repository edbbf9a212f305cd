// Scenes: a smooth light background with noise, loose clutter blobs, object cards (render_look at the
// card's size) and blank cards, placed without overlap by seeded rejection sampling.
#include "omnibind/apps/demo_world/world_scene.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "omnibind/common/error.h"

namespace omnibind::apps {
namespace {

using Rgb = std::array<double, 3>;

uint8_t byte(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); }

bool overlaps(const SceneBox& a, const SceneBox& b, int margin) {
  return a.x < b.x + b.w + margin && b.x < a.x + a.w + margin && a.y < b.y + b.h + margin && b.y < a.y + a.h + margin;
}

void fill_disc(media::Image& im, double cx, double cy, double r, const Rgb& c) {
  for (int y = std::max(0, int(cy - r)); y <= std::min(im.height - 1, int(cy + r)); ++y)
    for (int x = std::max(0, int(cx - r)); x <= std::min(im.width - 1, int(cx + r)); ++x)
      if (std::hypot(x + 0.5 - cx, y + 0.5 - cy) < r)
        for (int k = 0; k < 3; ++k) im.rgb[(size_t(y) * im.width + x) * 3 + k] = byte(c[k]);
}

}  // namespace

Scene make_scene(const WorldSpec& world, WorldRng& rng, const SceneOptions& o) {
  require(o.canvas >= 32 && o.canvas <= 4096, "scene canvas must be 32..4096 pixels");
  require(o.objects >= 1 && o.objects <= int(world.classes.size()),
          "a scene needs 1.." + std::to_string(world.classes.size()) + " objects");
  require(o.blank_cards >= 0 && o.loose_blobs >= 0, "negative distractor counts");
  require(o.min_card > 0 && o.min_card <= o.max_card && o.max_card < 1, "card sizes must satisfy 0 < min <= max < 1");

  Scene scene;
  media::Image& im = scene.image;
  im.width = im.height = o.canvas;
  im.rgb.resize(size_t(o.canvas) * o.canvas * 3);
  // Background: a light diagonal gradient between two colours, with pixel noise.
  Rgb c0, c1;
  for (int k = 0; k < 3; ++k) {
    c0[k] = rng.uniform(0.7, 0.95);
    c1[k] = rng.uniform(0.7, 0.95);
  }
  for (int y = 0; y < o.canvas; ++y)
    for (int x = 0; x < o.canvas; ++x) {
      const double t = (x + y) / (2.0 * o.canvas);
      for (int k = 0; k < 3; ++k) im.rgb[(size_t(y) * o.canvas + x) * 3 + k] = byte(c0[k] + t * (c1[k] - c0[k]) + 0.03 * rng.normal());
    }
  for (int b = 0; b < o.loose_blobs; ++b)
    fill_disc(im, rng.uniform(0, o.canvas), rng.uniform(0, o.canvas), rng.uniform(0.02, 0.06) * o.canvas,
              {rng.uniform(), rng.uniform(), rng.uniform()});

  // Card positions: objects first, then blank cards; none overlapping (2-pixel gap).
  std::vector<SceneBox> placed;
  auto place = [&]() {
    for (int attempt = 0; attempt < 2000; ++attempt) {
      const int side = int(std::lround(rng.uniform(o.min_card, o.max_card) * o.canvas));
      SceneBox box{rng.below(o.canvas - side + 1), rng.below(o.canvas - side + 1), side, side};
      if (std::none_of(placed.begin(), placed.end(), [&](const SceneBox& p) { return overlaps(box, p, 2); })) {
        placed.push_back(box);
        return box;
      }
    }
    throw InputError("cannot place " + std::to_string(o.objects + o.blank_cards) + " cards of up to " +
                     std::to_string(o.max_card) + " x the canvas without overlap; use fewer or smaller cards");
  };

  // Distinct classes for the objects (a partial Fisher-Yates shuffle).
  std::vector<int> classes(world.classes.size());
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = int(i);
  for (int i = 0; i < o.objects; ++i) std::swap(classes[size_t(i)], classes[size_t(i + rng.below(int(classes.size()) - i))]);

  for (int i = 0; i < o.objects; ++i) {
    const SceneBox box = place();
    RenderOptions render;
    render.image_size = box.w;
    WorldRng look = rng.fork(uint64_t(i) + 1);
    const media::Image card = render_look(world.classes[size_t(classes[size_t(i)])], look, render);
    for (int y = 0; y < box.h; ++y)
      std::copy_n(&card.rgb[size_t(y) * card.width * 3], size_t(box.w) * 3, &im.rgb[(size_t(box.y + y) * o.canvas + box.x) * 3]);
    scene.objects.push_back({classes[size_t(i)], box});
  }
  for (int i = 0; i < o.blank_cards; ++i) {
    const SceneBox box = place();
    Rgb bg;
    for (auto& v : bg) v = rng.uniform(0.75, 0.95);
    for (int y = 0; y < box.h; ++y)
      for (int x = 0; x < box.w; ++x)
        for (int k = 0; k < 3; ++k) im.rgb[(size_t(box.y + y) * o.canvas + box.x + x) * 3 + k] = byte(bg[k] + 0.03 * rng.normal());
    const int blobs = 1 + rng.below(3);
    for (int b = 0; b < blobs; ++b)
      fill_disc(im, box.x + rng.uniform(0.25, 0.75) * box.w, box.y + rng.uniform(0.25, 0.75) * box.h, rng.uniform(0.1, 0.2) * box.w,
                {rng.uniform(), rng.uniform(), rng.uniform()});
    scene.blank_cards.push_back(box);
  }
  return scene;
}

}  // namespace omnibind::apps
