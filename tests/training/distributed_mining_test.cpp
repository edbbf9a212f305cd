// `omnibind pairs` over 2 and 3 ranks (omnibind launch, loopback): the tuples file is byte-identical to
// the single-process one (anchors dealt out in the same blocks, gathered, written by rank 0).
#include <gtest/gtest.h>

#include <filesystem>

#include "omnibind/common/atomic_file.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

TEST(DistributedMining, TwoAndThreeRanksWriteTheSingleProcessFile) {
  const fs::path dir = testkit::make_temp_dir("dist_pairs");
  toy::World world(21);
  world.write_pool(dir / "pool", 150);
  // Blocks of 16 anchors: 10 per modality, so every rank searches several, unevenly.
  const std::vector<std::string> common{"pairs", "--pools", (dir / "pool").string(), "--block", "16", "--threads", "1", "--quiet"};
  auto args = [&](const std::string& out) {
    auto a = common;
    a.insert(a.end(), {"--out", (dir / out).string()});
    return a;
  };
  auto one = testkit::run_cli(args("t1.safetensors"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  for (const char* n : {"2", "3"}) {
    std::vector<std::string> launch{"launch", "--nproc", n, "--"};
    auto a = args(std::string("t") + n + ".safetensors");
    launch.insert(launch.end(), a.begin(), a.end());
    auto r = testkit::run_cli(launch);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("[rank 0] tuples: 600"), std::string::npos) << "rank 0 reports, prefixed: " << r.err;
    EXPECT_EQ(r.err.find("[rank 1] tuples"), std::string::npos) << "only rank 0 reports: " << r.err;
    EXPECT_EQ(read_file_bytes((dir / "t1.safetensors").string()), read_file_bytes((dir / (std::string("t") + n + ".safetensors")).string()))
        << n << " ranks";
  }
}

}  // namespace
}  // namespace omnibind::training
