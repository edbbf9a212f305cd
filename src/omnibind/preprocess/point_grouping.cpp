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

namespace {

// A uniform grid over the cloud's bounding box (points sorted by cell, CSR offsets) so each kNN
// query reads only the cells around its centre instead of all N points.
struct PointGrid {
  int r = 1;                      // cells per axis
  float lo[3] = {0, 0, 0};
  float h = 1;                    // cell size
  std::vector<int32_t> start;     // [r^3 + 1]
  std::vector<int32_t> order;     // point indices sorted by cell (ascending index within a cell)
  std::vector<float> x, y, z, xx; // coordinates and |x|^2 in `order`

  int cell_coord(float v, int axis) const {
    int c = static_cast<int>((v - lo[axis]) / h);
    return std::clamp(c, 0, r - 1);
  }
};

PointGrid build_grid(const float* xyz, int64_t n, int64_t k) {
  PointGrid g;
  float hi[3] = {xyz[0], xyz[1], xyz[2]};
  for (int c = 0; c < 3; ++c) g.lo[c] = xyz[c];
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) {
      g.lo[c] = std::min(g.lo[c], xyz[i * 3 + c]);
      hi[c] = std::max(hi[c], xyz[i * 3 + c]);
    }
  const float extent = std::max({hi[0] - g.lo[0], hi[1] - g.lo[1], hi[2] - g.lo[2], 1e-20f});
  // Clouds are mostly surfaces: ~n / (k/2) occupied cells on a surface -> side ~ 2 sqrt of that
  // (measured on the fixture clouds: fewer cells read more points, more cells walk more empties).
  g.r = static_cast<int>(std::clamp(2.0 * std::sqrt(static_cast<double>(n) / std::max<int64_t>(k / 2, 1)), 1.0, 96.0));
  g.h = extent / static_cast<float>(g.r) * 1.0001f;
  const int64_t cells = int64_t{g.r} * g.r * g.r;
  std::vector<int32_t> cell(n);
  g.start.assign(cells + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int cx = g.cell_coord(xyz[i * 3], 0), cy = g.cell_coord(xyz[i * 3 + 1], 1), cz = g.cell_coord(xyz[i * 3 + 2], 2);
    cell[i] = (cz * g.r + cy) * g.r + cx;
    ++g.start[cell[i] + 1];
  }
  for (int64_t c = 0; c < cells; ++c) g.start[c + 1] += g.start[c];
  g.order.resize(n);
  std::vector<int32_t> fill(g.start.begin(), g.start.end() - 1);
  for (int64_t i = 0; i < n; ++i) g.order[fill[cell[i]]++] = static_cast<int32_t>(i);
  g.x.resize(n);
  g.y.resize(n);
  g.z.resize(n);
  g.xx.resize(n);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t p = g.order[j];
    g.x[j] = xyz[p * 3];
    g.y[j] = xyz[p * 3 + 1];
    g.z[j] = xyz[p * 3 + 2];
    g.xx[j] = (g.x[j] * g.x[j] + g.y[j] * g.y[j]) + g.z[j] * g.z[j];
  }
  return g;
}

// k nearest of one centre by (reference distance, index), exact: cubes of cells grow around the
// centre until the k-th best distance found is below the squared distance to the cube's border
// (minus a margin covering the float rounding of the matmul formula), so no outside point can
// belong to the set.
void knn_query(const PointGrid& g, int64_t n, float cx, float cy, float cz, int64_t k,
               std::vector<std::pair<float, int32_t>>& cand, int32_t* out) {
  const float cc = (cx * cx + cy * cy) + cz * cz;
  const int ix = g.cell_coord(cx, 0), iy = g.cell_coord(cy, 1), iz = g.cell_coord(cz, 2);
  cand.clear();
  auto add_cell = [&](int x, int y, int z) {
    const int64_t c = (int64_t{z} * g.r + y) * g.r + x;
    for (int32_t j = g.start[c]; j < g.start[c + 1]; ++j) {
      float v = -2.0f * ((cx * g.x[j] + cy * g.y[j]) + cz * g.z[j]);
      v += cc;
      v += g.xx[j];
      cand.emplace_back(v, g.order[j]);
    }
  };
  for (int rad = 0;; ++rad) {
    // the shell of cells at Chebyshev distance `rad`
    for (int z = iz - rad; z <= iz + rad; ++z) {
      if (z < 0 || z >= g.r) continue;
      for (int y = iy - rad; y <= iy + rad; ++y) {
        if (y < 0 || y >= g.r) continue;
        const bool face = z == iz - rad || z == iz + rad || y == iy - rad || y == iy + rad;
        for (int x = ix - rad; x <= ix + rad; ++x) {
          if (x < 0 || x >= g.r) continue;
          if (face || x == ix - rad || x == ix + rad) add_cell(x, y, z);
        }
      }
    }
    const bool covers_all = ix - rad <= 0 && iy - rad <= 0 && iz - rad <= 0 && ix + rad >= g.r - 1 &&
                            iy + rad >= g.r - 1 && iz + rad >= g.r - 1;
    if (static_cast<int64_t>(cand.size()) >= k) {
      std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end());
      const float kth = cand[k - 1].first;
      // Distance from the centre to the border of the searched cube (clamped cells extend to
      // infinity, so a cube side at the grid edge is no border).
      float border = INFINITY;
      const float c3[3] = {cx, cy, cz};
      const int i3[3] = {ix, iy, iz};
      for (int a = 0; a < 3; ++a) {
        if (i3[a] - rad > 0) border = std::min(border, c3[a] - (g.lo[a] + (i3[a] - rad) * g.h));
        if (i3[a] + rad < g.r - 1) border = std::min(border, g.lo[a] + (i3[a] + rad + 1) * g.h - c3[a]);
      }
      border = std::max(border, 0.f);
      const float margin = 1e-5f * (1.0f + cc);
      if (covers_all || kth + margin < border * border) break;
    } else if (covers_all) {
      break;
    }
  }
  // the k smallest (distance, index): ties at the k-th distance go to the lower index
  std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end());
  for (int64_t j = 0; j < k; ++j) out[j] = cand[j].second;
  std::sort(out, out + k);
  (void)n;
}

}  // namespace

std::vector<int32_t> knn_indices(const float* xyz, int64_t n, const float* centers, int64_t g, int64_t k) {
  std::vector<int32_t> out(g * k);
  if (g == 0 || k == 0) return out;
  if (k > n) throw InputError("kNN: group size " + std::to_string(k) + " exceeds the number of points " + std::to_string(n));
  const PointGrid grid = build_grid(xyz, n, k);
  at::parallel_for(0, g, 16, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<float, int32_t>> cand;
    cand.reserve(8 * k);
    for (int64_t gi = begin; gi < end; ++gi)
      knn_query(grid, n, centers[gi * 3], centers[gi * 3 + 1], centers[gi * 3 + 2], k, cand, out.data() + gi * k);
  });
  return out;
}

PointGroups group_points(const float* xyz, const float* rgb, int64_t n, int64_t g, int64_t k) {
  if (g < 1 || k < 1) throw InputError("point grouping needs at least one group of at least one point");
  // Fewer points than groups is fine: like the CUDA kernel, FPS then repeats indices (every point's
  // distance is 0 once all are picked, and the kernel's tie rule decides). Fewer points than the
  // group size is not: the reference's kNN (topk over N) fails there too.
  if (n < k)
    throw InputError("point cloud has " + std::to_string(n) + " points, fewer than the model's group size " +
                     std::to_string(k) + " (each group takes the " + std::to_string(k) + " nearest points)");
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
