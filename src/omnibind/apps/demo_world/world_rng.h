// A small seeded generator with identical output on every platform and standard library
// (std::uniform_*_distribution differ between libstdc++ and libc++; the demo must not).
#pragma once
#include <cmath>
#include <cstdint>

namespace omnibind::apps {

class WorldRng {
 public:
  explicit WorldRng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {}
  // SplitMix64: passes BigCrush, one multiply-xorshift chain per draw.
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return static_cast<int>(uniform() * n); }                                 // [0, n)
  double normal() {  // Box-Muller, one value per call (simple and deterministic)
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // An independent stream for a sub-task (class c, item i, ...), so adding items never shifts others.
  WorldRng fork(uint64_t salt) const { return WorldRng(state_ ^ (salt * 0xD1B54A32D192ED03ull + 1)); }

 private:
  uint64_t state_;
};

}  // namespace omnibind::apps
