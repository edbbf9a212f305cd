// Uni3D grouping parity against the uni3d_mini fixture (reference: numpy pc_norm, pointnet2 FPS
// kernel emulation, Uni3D knn_point), plus synthetic cases for the tie rule and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "omnibind/common/error.h"
#include "omnibind/media/point_cloud.h"
#include "omnibind/preprocess/point_grouping.h"
#include "omnibind/tensor_io/safetensors.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
namespace tio = omnibind::tensor_io;

template <typename T>
std::vector<T> values(const tio::StateDict& sd, const std::string& key) {
  const auto& raw = sd.at(key);
  std::vector<T> v(raw.numel());
  EXPECT_EQ(tio::dtype_size(raw.dtype), sizeof(T)) << key;
  std::memcpy(v.data(), raw.data + raw.storage_offset * sizeof(T), v.size() * sizeof(T));
  return v;
}

struct Case {
  std::string input;  // fixture input name
  std::string file;   // file under inputs/
};
const std::vector<Case> kCases = {
    {"train", "train.ply"},         {"toilet", "toilet.safetensors"},       {"BBQ", "BBQ.ply"},
    {"mn10_chair_0890", "chair_0890.pcd"}, {"mn10_toilet_0345", "toilet_0345.pcd"}, {"mn10_monitor_0466", "monitor_0466.pcd"}};

std::string fixture(const std::string& rel) { return testkit::shared_path("fixtures/uni3d_mini/" + rel); }

TEST(Uni3dGrouping, PcNormIsBitExactForEveryInput) {
  OMNIBIND_REQUIRE_SHARED();
  auto common = tio::read_safetensors(fixture("expected_common.safetensors"));
  for (const auto& c : kCases) {
    auto pc = media::read_point_cloud_file(fixture("inputs/" + c.file));
    std::vector<float> norm(pc.xyz.size());
    preprocess::pc_norm(pc.xyz.data(), pc.size(), norm.data());
    auto want = values<float>(common.tensors, c.input + "/pc_norm");
    ASSERT_EQ(norm.size(), want.size()) << c.input;
    EXPECT_EQ(0, std::memcmp(norm.data(), want.data(), norm.size() * 4)) << c.input << ": pc_norm not bit-exact";
    auto feats = values<float>(common.tensors, c.input + "/features");
    for (int64_t i = 0; i < pc.size(); ++i)
      for (int k = 0; k < 3; ++k) ASSERT_EQ(pc.rgb[i * 3 + k], feats[i * 6 + 3 + k]) << c.input << " colour of point " << i;
  }
}

// FPS indices identical; kNN sets identical; grouped features equal; for both fixture models.
void check_model_groups(const std::string& model, int64_t groups, int64_t k, bool has_grouped_features) {
  auto common = tio::read_safetensors(fixture("expected_common.safetensors"));
  auto exp = tio::read_safetensors(fixture("expected_" + model + ".safetensors"));
  for (const auto& c : kCases) {
    auto norm = values<float>(common.tensors, c.input + "/pc_norm");
    auto feats = values<float>(common.tensors, c.input + "/features");
    const int64_t n = static_cast<int64_t>(norm.size() / 3);
    std::vector<float> rgb(n * 3);
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < 3; ++j) rgb[i * 3 + j] = feats[i * 6 + 3 + j];
    auto pg = preprocess::group_points(norm.data(), rgb.data(), n, groups, k);
    EXPECT_EQ(pg.fps_idx, values<int32_t>(exp.tensors, c.input + "/fps_idx")) << model << " " << c.input;
    EXPECT_EQ(pg.knn_idx, values<int32_t>(exp.tensors, c.input + "/knn_idx")) << model << " " << c.input;
    auto centers = values<float>(exp.tensors, c.input + "/centers");
    EXPECT_EQ(pg.centers, centers) << model << " " << c.input;
    if (has_grouped_features) {
      auto gf = values<float>(exp.tensors, c.input + "/grouped_features");
      ASSERT_EQ(gf.size(), pg.features.size());
      for (size_t i = 0; i < gf.size(); ++i) ASSERT_EQ(gf[i], pg.features[i]) << c.input << " feature " << i;
    }
  }
}

TEST(Uni3dGrouping, GMiniFpsAndKnnMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  check_model_groups("g_mini", 64, 16, true);
}

TEST(Uni3dGrouping, TinyFpsAndKnnMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  check_model_groups("tiny", 512, 64, false);
}

// Brute-force simulation of the pointnet2 CUDA kernel: block size min(512, 2^floor(log2 n)), each
// thread's first maximum over its strided points (points with |p|^2 <= 1e-3 skipped), then the tree
// reduction that takes the right slot only when strictly larger.
std::vector<int32_t> cuda_kernel_fps(const std::vector<float>& xyz, int n, int m) {
  int threads = 1;
  while (threads < 512 && threads * 2 <= n) threads *= 2;
  std::vector<float> temp(n, 1e10f);
  std::vector<int32_t> idx = {0};
  int old = 0;
  for (int j = 1; j < m; ++j) {
    std::vector<float> best(threads, -1.f);
    std::vector<int> besti(threads, 0);
    for (int t = 0; t < threads; ++t)
      for (int k = t; k < n; k += threads) {
        const float x = xyz[k * 3], y = xyz[k * 3 + 1], z = xyz[k * 3 + 2];
        if (static_cast<double>((x * x + y * y) + z * z) <= 1e-3) continue;
        float dx = x - xyz[old * 3], dy = y - xyz[old * 3 + 1], dz = z - xyz[old * 3 + 2];
        float d = (dx * dx + dy * dy) + dz * dz;
        float d2 = std::min(d, temp[k]);
        temp[k] = d2;
        if (d2 > best[t]) { best[t] = d2; besti[t] = k; }
      }
    for (int h = threads / 2; h >= 1; h /= 2)
      for (int t = 0; t < h; ++t)
        if (best[t + h] > best[t]) { best[t] = best[t + h]; besti[t] = besti[t + h]; }
    old = besti[0];
    idx.push_back(old);
  }
  return idx;
}

// A lattice with many exact ties: the CUDA tree order (smallest bit-reversed thread id, then the
// thread's first index) decides, not the lowest index.
TEST(Uni3dGrouping, FpsTieRuleFollowsTheCudaReduction) {
  // 1024 points with few distinct y values: many equal distances at every step. Points 1 and 2
  // tie for the first pick: thread 2 (bit-reversed 128) beats thread 1 (bit-reversed 256).
  // Kernel block size for n = 1024 is 512.
  const int n = 1024;
  std::vector<float> xyz(n * 3, 0.f);
  for (int i = 0; i < n; ++i) {
    xyz[i * 3] = 1.0f;                                   // keep every point off the origin (mag > 1e-3)
    xyz[i * 3 + 1] = (i == 1 || i == 2) ? 15.f : static_cast<float>((i * 37) % 7);  // heavily tied
  }
  auto idx = preprocess::furthest_point_sample(xyz.data(), n, 4);
  EXPECT_EQ(idx, cuda_kernel_fps(xyz, n, 4));
  // The lowest-index rule would pick 1 here, so the test tells the rules apart.
  EXPECT_EQ(idx[1], 2);
}

// Fewer points than samples (a 40- or 86-point cloud into 64 or 512 groups): once every point is
// picked all distances are 0 and the kernel's tie rule repeats indices; the reference embeds such
// clouds, so do we.
TEST(Uni3dGrouping, FewerPointsThanSamplesRepeatsLikeTheKernel) {
  for (int n : {5, 40, 86}) {
    std::vector<float> xyz;
    for (int i = 0; i < n; ++i) {
      xyz.push_back(std::sin(i * 0.91f) + 0.1f);
      xyz.push_back(std::cos(i * 0.43f));
      xyz.push_back(i == 3 ? 0.f : std::sin(i * 0.17f + 2));
    }
    xyz[3 * 3] = xyz[3 * 3 + 1] = 0.01f;  // one point near the origin: never picked
    for (int m : {64, 512}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " m=" + std::to_string(m));
      auto idx = preprocess::furthest_point_sample(xyz.data(), n, m);
      EXPECT_EQ(idx, cuda_kernel_fps(xyz, n, m));
      EXPECT_EQ(std::set<int32_t>(idx.begin(), idx.end()).size(), static_cast<size_t>(std::min(m, n - 1)));
    }
  }
}

TEST(Uni3dGrouping, FpsNeverPicksPointsNearTheOrigin) {
  std::vector<float> xyz = {0.5f, 0, 0, 0.01f, 0, 0, -0.5f, 0, 0, 0, 0.4f, 0, 0.02f, 0.01f, 0};
  auto idx = preprocess::furthest_point_sample(xyz.data(), 5, 3);
  EXPECT_EQ(idx, (std::vector<int32_t>{0, 2, 3}));
}

TEST(Uni3dGrouping, KnnIsTheExactNearestSet) {
  std::vector<float> xyz;
  for (int i = 0; i < 200; ++i) {
    xyz.push_back(std::sin(i * 0.37f));
    xyz.push_back(std::cos(i * 0.11f));
    xyz.push_back(std::sin(i * 0.05f + 1));
  }
  std::vector<float> centers = {xyz[30], xyz[31], xyz[32], 0.1f, -0.2f, 0.3f};
  auto idx = preprocess::knn_indices(xyz.data(), 200, centers.data(), 2, 10);
  for (int g = 0; g < 2; ++g) {
    std::vector<std::pair<double, int>> all;
    for (int i = 0; i < 200; ++i) {
      double d = 0;
      for (int c = 0; c < 3; ++c) d += std::pow(double(xyz[i * 3 + c]) - centers[g * 3 + c], 2);
      all.emplace_back(d, i);
    }
    std::sort(all.begin(), all.end());
    std::set<int> want, got(idx.begin() + g * 10, idx.begin() + g * 10 + 10);
    for (int j = 0; j < 10; ++j) want.insert(all[j].second);
    EXPECT_EQ(got, want) << "group " << g;
  }
}

TEST(Uni3dGrouping, FewerPointsThanTheGroupSizeIsAnInputError) {
  std::vector<float> xyz(10 * 3, 0.5f), rgb(10 * 3, 0.4f);
  for (int i = 0; i < 10; ++i) xyz[i * 3] = static_cast<float>(i);
  EXPECT_THROW(preprocess::group_points(xyz.data(), rgb.data(), 10, 512, 64), InputError);
  EXPECT_THROW(preprocess::group_points(xyz.data(), rgb.data(), 10, 4, 64), InputError);
  // Fewer points than groups but at least the group size: grouped with repeated centres.
  auto pg = preprocess::group_points(xyz.data(), rgb.data(), 10, 32, 8);
  EXPECT_EQ(pg.fps_idx.size(), 32u);
  EXPECT_EQ(pg.features.size(), 32u * 8 * 6);
}

TEST(Uni3dGrouping, PcNormOfACollapsedCloudIsAnInputError) {
  std::vector<float> xyz(30, 1.0f), out(30);
  EXPECT_THROW(preprocess::pc_norm(xyz.data(), 10, out.data()), InputError);
}

TEST(Uni3dGrouping, SubsampleIsDeterministicAndOrdered) {
  auto a = preprocess::subsample_indices(1000, 100, 7), b = preprocess::subsample_indices(1000, 100, 7);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 100u);
  EXPECT_EQ(preprocess::subsample_indices(50, 100, 7).size(), 50u);
}

}  // namespace
