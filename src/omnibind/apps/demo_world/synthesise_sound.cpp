// Sounds: a harmonic tone whose pitch follows a contour, shaped by a rhythm envelope, plus noise.
#include <algorithm>
#include <cmath>

#include "omnibind/apps/demo_world/world_media.h"

namespace omnibind::apps {
namespace {

constexpr double kTwoPi = 6.283185307179586;

double base_frequency(int pitch) {
  static const double hz[] = {170.0, 320.0, 600.0, 1100.0};
  return hz[pitch % 4];
}

// Pitch multiplier at time t (seconds) over a sound of length T.
double contour(int kind, double t, double T) {
  switch (kind) {
    case 1: return std::pow(1.6, t / T);                     // rising
    case 2: return std::pow(1.6, 1.0 - t / T);               // falling
    case 3: return 1.0 + 0.1 * std::sin(kTwoPi * 6.0 * t);   // wobbling
    default: return 1.0;                                      // steady
  }
}

// Amplitude of harmonic k (1-based) for a timbre.
double harmonic(int timbre, int k) {
  switch (timbre) {
    case 1: return 1.0 / k;                                   // bright: all harmonics
    case 2: return (k % 2) ? 1.0 / k : 0.0;                   // hollow: odd harmonics
    case 3: return (k % 2 ? 1.0 : -1.0) / std::sqrt(k);       // buzzing: slowly decaying
    default: return k == 1 ? 1.0 : 0.0;                       // pure
  }
}

double envelope(int rhythm, double t) {
  auto gate = [](double phase, double duty) { return phase < duty ? 1.0 : 0.08; };
  switch (rhythm) {
    case 1: return gate(std::fmod(t * 4.0, 1.0), 0.5);        // pulsing, 4 Hz
    case 2: return gate(std::fmod(t * 11.0, 1.0), 0.4);       // rattling, 11 Hz
    case 3: { const double p = std::fmod(t * 2.0, 1.0); return (p < 0.15 || (p > 0.25 && p < 0.4)) ? 1.0 : 0.05; }  // double beat
    default: return 1.0;                                       // continuous
  }
}

}  // namespace

media::Audio synthesise_sound(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options) {
  const int rate = options.sample_rate;
  const auto total = static_cast<int64_t>(options.sound_seconds * rate);
  const double f0 = base_frequency(spec.pitch) * rng.uniform(0.94, 1.06);
  const double onset = rng.uniform(0.0, 0.12), length = rng.uniform(0.5, 0.62);
  const double noise = rng.uniform(0.02, 0.12), gain = rng.uniform(0.35, 0.6);
  const double rhythm_shift = rng.uniform(0.0, 0.25);
  media::Audio audio;
  audio.sample_rate = rate;
  audio.channels.assign(1, std::vector<float>(static_cast<size_t>(total)));
  double phase = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double t = static_cast<double>(i) / rate, local = t - onset;
    double value = 0;
    if (local >= 0 && local < length) {
      phase += kTwoPi * f0 * contour(spec.contour, local, length) / rate;
      for (int k = 1; k <= 12; ++k) {
        const double a = harmonic(spec.timbre, k);
        if (a != 0 && f0 * k * 1.7 < rate / 2.0) value += a * std::sin(k * phase);
      }
      const double fade = std::min({1.0, local / 0.01, (length - local) / 0.02});  // no clicks
      value *= gain * 0.5 * fade * envelope(spec.rhythm, local + rhythm_shift);
    }
    value += noise * rng.normal() * 0.5;
    audio.channels[0][static_cast<size_t>(i)] = static_cast<float>(std::clamp(value, -1.0, 1.0));
  }
  return audio;
}

}  // namespace omnibind::apps
