// Uni3D's point-cloud pre-processing on the CPU: unit-sphere normalisation (pc_norm), farthest
// point sampling exactly as pointnet2's CUDA kernel picks, kNN grouping as Uni3D's knn_point, and
// the 6-channel group features (relative xyz, colour). Plain float arrays; kNN runs in parallel
// over groups (at::parallel_for), FPS is SIMD over points.
#pragma once
#include <cstdint>
#include <vector>

namespace omnibind::preprocess {

// experts.pc_norm as numpy float32 computes it: centroid = sequential float32 column sums / N;
// q = xyz - centroid; m = max_i sqrt((qx*qx + qy*qy) + qz*qz); out = q / m. out may alias xyz.
// An InputError when every point coincides (m == 0).
void pc_norm(const float* xyz, int64_t n, float* out);

// pointnet2_ops furthest_point_sample for one cloud: index 0 first; points with
// x*x+y*y+z*z <= 1e-3 are never candidates; running min of ((dx*dx + dy*dy) + dz*dz) in float32;
// the largest wins, ties going to the smallest (bitrev(k mod T), k) where T = the kernel's block
// size min(512, 2^floor(log2 n)) - the thread/tree order of the CUDA reduction.
std::vector<int32_t> furthest_point_sample(const float* xyz, int64_t n, int64_t m);

// Uni3D knn_point: for each centre the k points with the smallest
// (-2 * (c . x) + |c|^2) + |x|^2 (float32), a set (returned sorted ascending; ties at the k-th
// distance go to the lower index). Result [g][k].
std::vector<int32_t> knn_indices(const float* xyz, int64_t n, const float* centers, int64_t g, int64_t k);

struct PointGroups {
  int64_t num_groups = 0, group_size = 0;
  std::vector<int32_t> fps_idx;   // [G]
  std::vector<float> centers;     // [G][3]
  std::vector<int32_t> knn_idx;   // [G][K], ascending
  std::vector<float> features;    // [G][K][6]: xyz[n] - centre, rgb[n]
};

// FPS + kNN + gather on an already normalised cloud. InputError when n < max(g, k) or g, k < 1.
PointGroups group_points(const float* xyz, const float* rgb, int64_t n, int64_t g, int64_t k);

// Deterministic down-sampling to `target` points: a seeded uniform subset without replacement,
// kept in file order. Returns all indices when n <= target.
std::vector<int64_t> subsample_indices(int64_t n, int64_t target, uint64_t seed);

}  // namespace omnibind::preprocess
