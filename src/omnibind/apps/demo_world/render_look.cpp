// Images: a textured 2-D shape on a noisy background with distractor blobs, random pose.
#include <algorithm>
#include <array>
#include <cmath>

#include "omnibind/apps/demo_world/world_media.h"

namespace omnibind::apps {
namespace {

using Rgb = std::array<double, 3>;

Rgb palette(int colour) {
  static const Rgb colours[] = {{0.86, 0.15, 0.15}, {0.95, 0.55, 0.10}, {0.95, 0.88, 0.15}, {0.20, 0.70, 0.25},
                                {0.10, 0.65, 0.65}, {0.15, 0.30, 0.90}, {0.55, 0.20, 0.75}, {0.95, 0.45, 0.70}};
  return colours[colour % 8];
}

// Is object-space point (x, y) in [-1, 1]^2 inside the shape?
bool inside(int shape, double x, double y) {
  const double r = std::hypot(x, y), theta = std::atan2(y, x);
  switch (shape) {
    case 0: return r < 0.8;                                                   // circle
    case 1: return std::max(std::abs(x), std::abs(y)) < 0.68;                  // square
    case 2: return y > -0.55 && std::abs(x) < (0.75 - y) * 0.6;                // triangle (apex up)
    case 3: return std::abs(x) + std::abs(y) < 0.85;                           // diamond
    case 4: return r < 0.5 + 0.33 * std::cos(5 * theta);                       // star
    case 5: return r > 0.45 && r < 0.85;                                       // ring
    case 6: return (std::abs(x) < 0.24 && std::abs(y) < 0.8) || (std::abs(y) < 0.24 && std::abs(x) < 0.8);  // cross
    default: return std::max(std::abs(x) * 0.866 + std::abs(y) * 0.5, std::abs(y)) < 0.72;  // hexagon
  }
}

// Texture modulation at object-space (x, y): 1 = base colour, <1 = darker pattern.
double texture(int kind, double x, double y) {
  switch (kind) {
    case 1: return std::sin(x * 9.0) > 0 ? 1.0 : 0.45;                                          // striped
    case 2: return std::hypot(std::fmod(x + 4.0, 0.5) - 0.25, std::fmod(y + 4.0, 0.5) - 0.25) < 0.12 ? 0.4 : 1.0;  // dotted
    case 3: return ((static_cast<int>(std::floor((x + 4.0) * 2.5)) + static_cast<int>(std::floor((y + 4.0) * 2.5))) & 1) ? 1.0 : 0.5;  // checkered
    default: return 1.0;                                                                         // plain
  }
}

}  // namespace

media::Image render_look(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options) {
  const int n = options.image_size;
  const Rgb base = palette(spec.colour);
  const double scale = rng.uniform(0.55, 0.85), angle = rng.uniform(-0.5, 0.5);
  const double cx = rng.uniform(-0.15, 0.15), cy = rng.uniform(-0.15, 0.15);
  const Rgb background{rng.uniform(0.75, 0.95), rng.uniform(0.75, 0.95), rng.uniform(0.75, 0.95)};
  struct Blob { double x, y, r; Rgb colour; };
  std::vector<Blob> clutter(rng.below(options.clutter_max + 1));
  for (auto& b : clutter)
    b = {rng.uniform(-0.9, 0.9), rng.uniform(-0.9, 0.9), rng.uniform(0.06, 0.16), {rng.uniform(), rng.uniform(), rng.uniform()}};

  media::Image image;
  image.width = image.height = n;
  image.rgb.resize(static_cast<size_t>(n) * n * 3);
  const double c = std::cos(angle), s = std::sin(angle);
  constexpr int kSuper = 3;  // 3x3 supersampling for smooth edges
  for (int py = 0; py < n; ++py)
    for (int px = 0; px < n; ++px) {
      Rgb acc{0, 0, 0};
      for (int sy = 0; sy < kSuper; ++sy)
        for (int sx = 0; sx < kSuper; ++sx) {
          const double u = ((px + (sx + 0.5) / kSuper) / n) * 2 - 1, v = 1 - ((py + (sy + 0.5) / kSuper) / n) * 2;
          Rgb colour = background;
          for (const auto& b : clutter)
            if (std::hypot(u - b.x, v - b.y) < b.r) colour = b.colour;
          // Image -> object coordinates: undo translation, rotation, scale.
          const double du = (u - cx) / scale, dv = (v - cy) / scale;
          const double x = c * du + s * dv, y = -s * du + c * dv;
          if (inside(spec.shape2d, x, y)) {
            const double t = texture(spec.texture, x, y);
            for (int k = 0; k < 3; ++k) colour[k] = base[k] * t;
          }
          for (int k = 0; k < 3; ++k) acc[k] += colour[k];
        }
      for (int k = 0; k < 3; ++k) {
        const double value = acc[k] / (kSuper * kSuper) + rng.normal() * 0.03;
        image.rgb[(static_cast<size_t>(py) * n + px) * 3 + k] = static_cast<uint8_t>(std::lround(std::clamp(value, 0.0, 1.0) * 255));
      }
    }
  return image;
}

}  // namespace omnibind::apps
