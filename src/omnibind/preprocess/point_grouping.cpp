#include "omnibind/preprocess/point_grouping.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

constexpr int kLanes = 8;
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

// Structure-of-arrays copy padded to a multiple of kLanes. Padding and excluded points carry
// temp = -1, which min(d, -1) keeps for ever, so they can never be the maximum.
struct FpsState {
  std::vector<float, std::allocator<float>> x, y, z, temp;
  int64_t padded = 0;
};

// One FPS step: temp = min(temp, d(old)); returns the maximum of temp and whether it is an exact
// tie (reached more than once); `arg` gets its index when it is not a tie. Plain float ops in the
// kernel's order (no FMA: neither x86-64 baseline nor avx2 targets contract).
__attribute__((target_clones("avx2", "default")))
float fps_step(const float* __restrict X, const float* __restrict Y, const float* __restrict Z,
               float* __restrict T, int64_t padded, float x1, float y1, float z1, int64_t* arg, bool* tie) {
  f8 vx1 = {x1, x1, x1, x1, x1, x1, x1, x1}, vy1 = {y1, y1, y1, y1, y1, y1, y1, y1},
     vz1 = {z1, z1, z1, z1, z1, z1, z1, z1};
  f8 vmax = {-2, -2, -2, -2, -2, -2, -2, -2};
  i8 vidx = {0, 0, 0, 0, 0, 0, 0, 0}, vtie = vidx;
  i8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int64_t i = 0; i < padded; i += kLanes) {
    f8 px, py, pz, t;
    __builtin_memcpy(&px, X + i, sizeof(f8));
    __builtin_memcpy(&py, Y + i, sizeof(f8));
    __builtin_memcpy(&pz, Z + i, sizeof(f8));
    __builtin_memcpy(&t, T + i, sizeof(f8));
    f8 dx = px - vx1, dy = py - vy1, dz = pz - vz1;
    f8 d = dx * dx + dy * dy;
    d = d + dz * dz;
    t = d < t ? d : t;
    __builtin_memcpy(T + i, &t, sizeof(f8));
    i8 gt = t > vmax, eq = t == vmax;
    i8 idx = lane + static_cast<int32_t>(i);
    vidx = gt ? idx : vidx;
    vtie = gt ? i8{0, 0, 0, 0, 0, 0, 0, 0} : (eq ? i8{1, 1, 1, 1, 1, 1, 1, 1} : vtie);
    vmax = gt ? t : vmax;
  }
  float best = vmax[0];
  for (int l = 1; l < kLanes; ++l) best = std::max(best, vmax[l]);
  int holders = 0;
  bool any_tie = false;
  for (int l = 0; l < kLanes; ++l)
    if (vmax[l] == best) {
      ++holders;
      any_tie |= vtie[l] != 0;
      *arg = vidx[l];
    }
  *tie = holders > 1 || any_tie;
  return best;
}

uint32_t bit_reverse(uint32_t v, int bits) {
  uint32_t r = 0;
  for (int b = 0; b < bits; ++b) r |= ((v >> b) & 1u) << (bits - 1 - b);
  return r;
}

}  // namespace

void pc_norm(const float* xyz, int64_t n, float* out) {
  if (n <= 0) throw InputError("pc_norm: empty point cloud");
  float sum[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) sum[c] += xyz[i * 3 + c];
  const float fn = static_cast<float>(n);
  const float centroid[3] = {sum[0] / fn, sum[1] / fn, sum[2] / fn};
  float m = 0;
  for (int64_t i = 0; i < n; ++i) {
    float q[3];
    for (int c = 0; c < 3; ++c) q[c] = xyz[i * 3 + c] - centroid[c];
    float r = std::sqrt((q[0] * q[0] + q[1] * q[1]) + q[2] * q[2]);
    m = std::max(m, r);
  }
  if (!(m > 0) || !std::isfinite(m))
    throw InputError("point cloud has no extent (all points coincide) or non-finite coordinates");
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = (xyz[i * 3 + c] - centroid[c]) / m;
}

std::vector<int32_t> furthest_point_sample(const float* xyz, int64_t n, int64_t m) {
  std::vector<int32_t> idx;
  if (m <= 0 || n <= 0) return idx;
  idx.reserve(m);
  // The kernel's block size: opt_n_threads(n) = min(512, 2^floor(log2 n)).
  int bits = 0;
  while (bits < 9 && (int64_t{2} << bits) <= n) ++bits;
  const uint32_t threads = 1u << bits;

  FpsState s;
  s.padded = (n + kLanes - 1) / kLanes * kLanes;
  s.x.assign(s.padded, 0.f);
  s.y.assign(s.padded, 0.f);
  s.z.assign(s.padded, 0.f);
  s.temp.assign(s.padded, -1.f);
  for (int64_t k = 0; k < n; ++k) {
    const float x = xyz[k * 3], y = xyz[k * 3 + 1], z = xyz[k * 3 + 2];
    s.x[k] = x;
    s.y[k] = y;
    s.z[k] = z;
    const float mag = (x * x + y * y) + z * z;
    // float compared with the double literal 1e-3, as in C++/CUDA.
    s.temp[k] = static_cast<double>(mag) <= 1e-3 ? -1.f : 1e10f;
  }
  int32_t old = 0;
  idx.push_back(old);
  for (int64_t j = 1; j < m; ++j) {
    int64_t arg = 0;
    bool tie = false;
    const float best = fps_step(s.x.data(), s.y.data(), s.z.data(), s.temp.data(), s.padded, xyz[old * 3],
                                xyz[old * 3 + 1], xyz[old * 3 + 2], &arg, &tie);
    if (best < 0) {
      old = 0;  // every point excluded: each CUDA thread reports besti = 0
    } else if (!tie) {
      old = static_cast<int32_t>(arg);
    } else {
      // Exact tie: the reduction tree keeps the thread with the smallest bit-reversed id, and
      // each thread its first (lowest k) maximum.
      uint64_t best_key = UINT64_MAX;
      for (int64_t k = 0; k < n; ++k)
        if (s.temp[k] == best) {
          uint64_t key = (uint64_t{bit_reverse(static_cast<uint32_t>(k) & (threads - 1), bits)} << 32) |
                         static_cast<uint64_t>(k);
          if (key < best_key) {
            best_key = key;
            old = static_cast<int32_t>(k);
          }
        }
    }
    idx.push_back(old);
  }
  return idx;
}

std::vector<int32_t> knn_indices(const float* xyz, int64_t n, const float* centers, int64_t g, int64_t k) {
  std::vector<int32_t> out(g * k);
  if (g == 0 || k == 0) return out;
  if (k > n) throw InputError("kNN: group size " + std::to_string(k) + " exceeds the number of points " + std::to_string(n));
  // |x|^2 once for all centres; SoA for a vectorisable distance loop.
  std::vector<float> X(n), Y(n), Z(n), XX(n);
  for (int64_t i = 0; i < n; ++i) {
    X[i] = xyz[i * 3];
    Y[i] = xyz[i * 3 + 1];
    Z[i] = xyz[i * 3 + 2];
    XX[i] = (X[i] * X[i] + Y[i] * Y[i]) + Z[i] * Z[i];
  }
  at::parallel_for(0, g, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> d(n);
    std::vector<std::pair<float, int32_t>> heap;
    heap.reserve(k);
    for (int64_t gi = begin; gi < end; ++gi) {
      const float cx = centers[gi * 3], cy = centers[gi * 3 + 1], cz = centers[gi * 3 + 2];
      const float cc = (cx * cx + cy * cy) + cz * cz;
      float* __restrict dp = d.data();
      for (int64_t i = 0; i < n; ++i) {
        float v = -2.0f * ((cx * X[i] + cy * Y[i]) + cz * Z[i]);
        v += cc;
        v += XX[i];
        dp[i] = v;
      }
      // k smallest by (distance, index): a max-heap of the current best k, most points rejected
      // by a single comparison with its top.
      heap.clear();
      for (int64_t i = 0; i < k; ++i) heap.emplace_back(dp[i], static_cast<int32_t>(i));
      std::make_heap(heap.begin(), heap.end());
      float thr = heap.front().first;
      for (int64_t i = k; i < n; ++i) {
        if (dp[i] < thr) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = {dp[i], static_cast<int32_t>(i)};
          std::push_heap(heap.begin(), heap.end());
          thr = heap.front().first;
        }
      }
      int32_t* o = out.data() + gi * k;
      for (int64_t j = 0; j < k; ++j) o[j] = heap[j].second;
      std::sort(o, o + k);
    }
  });
  return out;
}

PointGroups group_points(const float* xyz, const float* rgb, int64_t n, int64_t g, int64_t k) {
  if (g < 1 || k < 1) throw InputError("point grouping needs at least one group of at least one point");
  if (n < g || n < k)
    throw InputError("point cloud has " + std::to_string(n) + " points, fewer than the model's " + std::to_string(g) +
                     " groups of " + std::to_string(k));
  PointGroups pg;
  pg.num_groups = g;
  pg.group_size = k;
  pg.fps_idx = furthest_point_sample(xyz, n, g);
  pg.centers.resize(g * 3);
  for (int64_t i = 0; i < g; ++i)
    for (int c = 0; c < 3; ++c) pg.centers[i * 3 + c] = xyz[pg.fps_idx[i] * 3 + c];
  pg.knn_idx = knn_indices(xyz, n, pg.centers.data(), g, k);
  pg.features.resize(g * k * 6);
  for (int64_t i = 0; i < g; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t p = pg.knn_idx[i * k + j];
      float* f = pg.features.data() + (i * k + j) * 6;
      for (int c = 0; c < 3; ++c) {
        f[c] = xyz[p * 3 + c] - pg.centers[i * 3 + c];
        f[3 + c] = rgb[p * 3 + c];
      }
    }
  return pg;
}

std::vector<int64_t> subsample_indices(int64_t n, int64_t target, uint64_t seed) {
  std::vector<int64_t> all(std::max<int64_t>(n, 0));
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  if (n <= target) return all;
  // Partial Fisher-Yates with splitmix64 (same picks on every platform), then file order.
  uint64_t state = seed;
  auto next = [&]() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int64_t i = 0; i < target; ++i) {
    const uint64_t span = static_cast<uint64_t>(n - i);
    const int64_t j = i + static_cast<int64_t>(next() % span);
    std::swap(all[i], all[j]);
  }
  all.resize(target);
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace omnibind::preprocess
