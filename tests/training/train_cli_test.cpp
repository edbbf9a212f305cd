// `omnibind pairs` and `omnibind train` end to end: a trained head file that `fuse --config` runs,
// and the bad-input cases of issue 3 (exit 2, one line naming the problem, nothing written).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

TEST(TrainCli, PairsTrainThenFuse) {
  const fs::path dir = testkit::make_temp_dir("train_cli");
  toy::World world(8);
  world.write_pool(dir / "pool", 150);
  write_bytes_atomically((dir / "config.json").string(), toy::kConfigJson);
  auto pairs = testkit::run_cli({"pairs", "--pools", (dir / "pool").string(), "--out", (dir / "t.safetensors").string(), "--quiet"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  EXPECT_NE(pairs.err.find("class purity"), std::string::npos);
  auto train = testkit::run_cli({"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--pairs",
                                 (dir / "t.safetensors").string(), "--out", (dir / "heads.safetensors").string(), "--epochs-proj",
                                 "2", "--epochs-router", "2", "--threads", "1", "--seed", "3"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("ETA"), std::string::npos) << "progress shows loss and ETA";
  EXPECT_FALSE(fs::exists(dir / "heads.safetensors.train-state.safetensors"));
  auto file = tensor_io::read_safetensors((dir / "heads.safetensors").string());
  EXPECT_NE(file.metadata["binding_config"].find("\"backbone\""), std::string::npos);
  // The checkpoint runs in fuse with the same config.
  at::Tensor labels = at::arange(10, at::kLong).remainder(8);
  auto audio = world.embed("audio", labels);
  tensor_io::write_tensors((dir / "in.safetensors").string(), {{"audio/AT", audio["AT"]}});
  auto fuse = testkit::run_cli({"fuse", "--head", (dir / "heads.safetensors").string(), "--config", (dir / "config.json").string(),
                                "--in", (dir / "in.safetensors").string(), "--out", (dir / "u.safetensors").string()});
  ASSERT_EQ(fuse.exit_code, 0) << fuse.err;
  auto u = tensor_io::read_safetensors((dir / "u.safetensors").string());
  EXPECT_EQ(u.tensors.at("audio").shape, (std::vector<int64_t>{10, 16}));
  // Same seed, same threads: the same bytes.
  auto again = testkit::run_cli({"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--pairs",
                                 (dir / "t.safetensors").string(), "--out", (dir / "heads2.safetensors").string(), "--epochs-proj",
                                 "2", "--epochs-router", "2", "--threads", "1", "--seed", "3", "--quiet"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_file_bytes((dir / "heads.safetensors").string()), read_file_bytes((dir / "heads2.safetensors").string()));
}

TEST(TrainCli, BadInputIsOneLineExit2AndWritesNothing) {
  const fs::path dir = testkit::make_temp_dir("train_cli_bad");
  toy::World world(9);
  world.write_pool(dir / "pool", 60);
  write_bytes_atomically((dir / "config.json").string(), toy::kConfigJson);
  std::string unknown = toy::kConfigJson;
  unknown.replace(unknown.find("\"PI\": {"), 4, "\"ZZ\"");
  for (size_t at = unknown.find("[\"PI\"]"); at != std::string::npos; at = unknown.find("[\"PI\"]")) unknown.replace(at, 6, "[\"ZZ\"]");
  write_bytes_atomically((dir / "unknown.json").string(), unknown);
  // A pool whose audio holds a NaN row.
  fs::copy(dir / "pool", dir / "nan", fs::copy_options::recursive);
  at::Tensor x = at::randn({60, 12});
  x = x / x.norm(2, 1, true);
  x[5][0] = std::numeric_limits<float>::quiet_NaN();
  tensor_io::write_tensors((dir / "nan" / "audio-0.safetensors").string(), {{"AT", x}, {"label", at::zeros({60}, at::kLong)}});
  // A pool whose text dims disagree with the manifest.
  fs::copy(dir / "pool", dir / "dims", fs::copy_options::recursive);
  tensor_io::write_tensors((dir / "dims" / "text-0.safetensors").string(),
                           {{"AT", at::randn({60, 12})}, {"IT", at::randn({60, 15})}, {"label", at::zeros({60}, at::kLong)}});
  struct Case { std::vector<std::string> args; std::string expect; };
  const std::string out = (dir / "heads.safetensors").string();
  const std::vector<Case> cases{
      {{"train", "--pools", (dir / "pool").string(), "--config", (dir / "unknown.json").string(), "--out", out}, "ZZ"},
      {{"train", "--pools", (dir / "nan").string(), "--config", (dir / "config.json").string(), "--out", out, "--quiet"}, "NaN"},
      {{"train", "--pools", (dir / "dims").string(), "--config", (dir / "config.json").string(), "--out", out}, "'IT'"},
      {{"train", "--pools", (dir / "missing").string(), "--config", (dir / "config.json").string(), "--out", out}, "missing"},
      {{"pairs", "--pools", (dir / "pool").string(), "--out", out, "--topk", "3"}, "--aggregate"},
      // Router objective flags (issue 16 stop 25): named values and ranges, contradictions.
      {{"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--out", out, "--router-objective", "magic"},
       "--router-objective"},
      {{"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--out", out, "--router-noise-weight", "-1"},
       "--router-noise-weight"},
      {{"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--out", out,
        "--router-validation-metric", "f1"},
       "--router-validation-metric"},
      {{"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--out", out,
        "--text-router-keeps-decoupling", "--text-router-free"},
       "contradict"},
      {{"pairs", "--pools", (dir / "pool").string(), "--out", out, "--index", "NoSuchIndex"}, "--index"},
  };
  for (const auto& c : cases) {
    auto r = testkit::run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[1] << " " << c.args[3] << ": " << r.err;
    const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) == std::string::npos ? 0 : r.err.rfind('\n', r.err.size() - 2) + 1);
    EXPECT_TRUE(one_line(last)) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "nothing written for " << c.expect;
  }
}

}  // namespace
}  // namespace omnibind::training
