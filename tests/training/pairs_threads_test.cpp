// `omnibind pairs --threads`: the thread count reaches the mining GEMMs (training/compute_threads.h) without
// changing the tuples, and a negative count is bad input (exit 2, one line, nothing written).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

TEST(PairsThreads, SameTuplesWithOneAndTwoThreads) {
  const fs::path dir = testkit::make_temp_dir("pairs_threads");
  toy::World world(5);
  world.write_pool(dir / "pool", 300);
  for (const char* n : {"1", "2"}) {
    auto r = testkit::run_cli({"pairs", "--pools", (dir / "pool").string(), "--out", (dir / (std::string(n) + ".safetensors")).string(),
                               "--threads", n, "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  TupleSet a = load_tuples(dir / "1.safetensors"), b = load_tuples(dir / "2.safetensors");
  ASSERT_GT(a.size(), 0);
  EXPECT_TRUE(at::equal(a.index, b.index));
  EXPECT_TRUE(at::equal(a.anchor, b.anchor));
  EXPECT_TRUE(at::allclose(a.score, b.score, 0, 1e-5));
}

TEST(PairsThreads, NegativeCountIsBadInput) {
  const fs::path dir = testkit::make_temp_dir("pairs_threads_bad");
  toy::World world(5);
  world.write_pool(dir / "pool", 40);
  const fs::path out = dir / "t.safetensors";
  auto r = testkit::run_cli({"pairs", "--pools", (dir / "pool").string(), "--out", out.string(), "--threads", "-2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace omnibind::training
