// Point clouds: points on the surface of a parametric solid, random yaw, scale and jitter.
#include <cmath>

#include "omnibind/apps/demo_world/world_media.h"

namespace omnibind::apps {
namespace {

constexpr double kTwoPi = 6.283185307179586;

struct P { double x, y, z; };

// A point on the unit-ish surface of `form`, z up.
P surface_point(int form, WorldRng& rng) {
  switch (form) {
    case 0: {  // sphere
      P p{rng.normal(), rng.normal(), rng.normal()};
      const double n = std::sqrt(p.x * p.x + p.y * p.y + p.z * p.z) + 1e-12;
      return {p.x / n * 0.8, p.y / n * 0.8, p.z / n * 0.8};
    }
    case 1: {  // cube: a face, then a point on it
      const int face = rng.below(6);
      const double a = rng.uniform(-0.6, 0.6), b = rng.uniform(-0.6, 0.6), s = face % 2 ? 0.6 : -0.6;
      if (face < 2) return {s, a, b};
      if (face < 4) return {a, s, b};
      return {a, b, s};
    }
    case 2: {  // torus R=0.6 r=0.22 (area-weighted by rejection on the tube angle)
      double u, v;
      do { u = rng.uniform(0, kTwoPi); v = rng.uniform(0, kTwoPi); } while (rng.uniform() > (0.6 + 0.22 * std::cos(v)) / 0.82);
      return {(0.6 + 0.22 * std::cos(v)) * std::cos(u), (0.6 + 0.22 * std::cos(v)) * std::sin(u), 0.22 * std::sin(v)};
    }
    case 3: {  // cone: apex up, base radius 0.6 (lateral surface by area, plus the base disc)
      const double u = rng.uniform(0, kTwoPi);
      if (rng.uniform() < 0.3) { const double r = 0.6 * std::sqrt(rng.uniform()); return {r * std::cos(u), r * std::sin(u), -0.6}; }
      const double h = 1.0 - std::sqrt(rng.uniform());  // 0 at the base ring, 1 at the apex
      return {0.6 * (1 - h) * std::cos(u), 0.6 * (1 - h) * std::sin(u), -0.6 + 1.2 * h};
    }
    case 4: {  // cylinder with caps
      const double u = rng.uniform(0, kTwoPi);
      if (rng.uniform() < 0.25) { const double r = 0.5 * std::sqrt(rng.uniform()); return {r * std::cos(u), r * std::sin(u), rng.uniform() < 0.5 ? -0.6 : 0.6}; }
      return {0.5 * std::cos(u), 0.5 * std::sin(u), rng.uniform(-0.6, 0.6)};
    }
    case 5: {  // helix: a tube of radius 0.08 around a 3-turn helix
      const double t = rng.uniform(0, 1), a = t * 3 * kTwoPi, w = rng.uniform(0, kTwoPi);
      const double cx = 0.55 * std::cos(a), cy = 0.55 * std::sin(a), cz = -0.7 + 1.4 * t;
      return {cx + 0.08 * std::cos(w) * std::cos(a), cy + 0.08 * std::cos(w) * std::sin(a), cz + 0.08 * std::sin(w)};
    }
    case 6: {  // square pyramid: 4 sloped faces + base
      const double a = rng.uniform(-1, 1), b = rng.uniform(0, 1);
      if (rng.uniform() < 0.2) return {rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), -0.6};
      const double h = 1.0 - std::sqrt(b), half = 0.6 * (1 - h), z = -0.6 + 1.2 * h;
      switch (rng.below(4)) {
        case 0: return {half, a * half, z};
        case 1: return {-half, a * half, z};
        case 2: return {a * half, half, z};
        default: return {a * half, -half, z};
      }
    }
    default: {  // ellipsoid
      P p{rng.normal(), rng.normal(), rng.normal()};
      const double n = std::sqrt(p.x * p.x + p.y * p.y + p.z * p.z) + 1e-12;
      return {p.x / n * 0.85, p.y / n * 0.5, p.z / n * 0.35};
    }
  }
}

}  // namespace

media::PointCloud sample_form(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options) {
  static const double stretch[] = {0.55, 1.0, 1.6};  // squat, regular, tall
  const double z_scale = stretch[spec.proportion % 3] * rng.uniform(0.92, 1.08);
  const double scale = rng.uniform(0.85, 1.15), yaw = rng.uniform(0, kTwoPi), jitter = rng.uniform(0.005, 0.02);
  const double c = std::cos(yaw), s = std::sin(yaw);
  media::PointCloud cloud;
  cloud.xyz.reserve(static_cast<size_t>(options.points) * 3);
  for (int i = 0; i < options.points; ++i) {
    P p = surface_point(spec.form, rng);
    p.z *= z_scale;
    const double x = c * p.x - s * p.y, y = s * p.x + c * p.y;
    cloud.xyz.push_back(static_cast<float>(scale * x + jitter * rng.normal()));
    cloud.xyz.push_back(static_cast<float>(scale * y + jitter * rng.normal()));
    cloud.xyz.push_back(static_cast<float>(scale * p.z + jitter * rng.normal()));
  }
  cloud.rgb.assign(cloud.xyz.size(), media::kDefaultPointColour);
  return cloud;
}

}  // namespace omnibind::apps
