// `omnibind world` end to end: a family member written by the CLI goes through pairs -> train -> eval, and
// eval takes the binding config from the trained head's metadata when --config is absent (issue 16 item 6).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/training/world_family.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

TEST(WorldCli, WritesAMemberThatTrainsAndEvaluatesWithoutConfig) {
  const std::string d = testkit::make_temp_dir("world_cli") + "/w";
  auto w = testkit::run_cli({"world", "--split", "tuning", "--index", "1", "--out", d, "--rows-scale", "0.03"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  for (const char* f : {"train/manifest.json", "eval/manifest.json", "eval/prompts.safetensors", "config.json", "world.json"})
    EXPECT_TRUE(fs::exists(d + "/" + f)) << f;
  // world.json describes the same member the library gives.
  auto desc = nlohmann::json::parse(read_file_bytes(d + "/world.json"));
  EXPECT_EQ(desc["split"], "tuning");
  EXPECT_EQ(desc["index"], 1);
  EXPECT_EQ(desc["seed"].get<uint64_t>(), kTuningSeedBase + 1);
  // Printing the description alone writes nothing.
  auto print = testkit::run_cli({"world", "--split", "heldout", "--index", "2"});
  ASSERT_EQ(print.exit_code, 0) << print.err;
  EXPECT_EQ(nlohmann::json::parse(print.out)["seed"].get<uint64_t>(), kHeldOutSeedBase + 2);

  auto pairs = testkit::run_cli({"pairs", "--pools", d + "/train", "--out", d + "/pairs.safetensors", "--threads", "1", "--quiet"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  auto train = testkit::run_cli({"train", "--pools", d + "/train", "--config", d + "/config.json", "--pairs", d + "/pairs.safetensors",
                                 "--out", d + "/head.safetensors", "--epochs-proj", "1", "--epochs-router", "1", "--threads", "1",
                                 "--quiet"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto with = testkit::run_cli({"eval", "--pools", d + "/eval", "--head", d + "/head.safetensors", "--config", d + "/config.json"});
  auto without = testkit::run_cli({"eval", "--pools", d + "/eval", "--head", d + "/head.safetensors"});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(without.out, with.out);
  EXPECT_NE(without.out.find("learned routing"), std::string::npos);
}

TEST(WorldCli, BadMembersAreOneLineExitTwo) {
  const std::string d = testkit::make_temp_dir("world_cli_bad") + "/w";
  testkit::expect_exit2({"world", "--split", "heldout", "--index", "24", "--out", d}, d, "out of range");
  testkit::expect_exit2({"world", "--split", "validation", "--index", "0", "--out", d}, d, "tuning or heldout");
  testkit::expect_exit2({"world", "--split", "tuning", "--index", "0", "--out", d, "--rows-scale", "0"}, d, "must be positive");
}

}  // namespace
}  // namespace omnibind::training
