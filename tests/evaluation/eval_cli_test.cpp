// omnibind eval end to end: synthetic evaluation pool + a checkpoint in the official layout -> table on stdout,
// JSON and Markdown files; bad input -> one line on stderr, exit 2, nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "evaluation/test_heads.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
namespace fs = std::filesystem;

namespace {
struct Fixture {
  std::string dir, eval, head, config;
};
Fixture make_fixture() {
  Fixture f;
  f.dir = testkit::make_temp_dir("eval_cli");
  evaluation::SyntheticWorldOptions o;
  o.train_rows = 20;
  o.eval_tuples = 60;
  auto w = evaluation::make_synthetic_world(o);
  evaluation::write_synthetic_pools(w, f.dir + "/train", f.dir + "/eval");
  auto cfg = w.binding_config(2, 16);
  f.eval = f.dir + "/eval";
  f.head = f.dir + "/head.safetensors";
  f.config = f.dir + "/config.json";
  tensor_io::write_checkpoint(f.head, evaltest::random_heads(cfg, 5), {{"binding_config", binding::binding_config_to_json(cfg)}});
  write_bytes_atomically(f.config, binding::binding_config_to_json(cfg));
  return f;
}
}  // namespace

TEST(EvalCli, WritesOneTableAsMarkdownAndJson) {
  auto f = make_fixture();
  auto r = testkit::run_cli({"eval", "--pools", f.eval, "--head", f.head, "--config", f.config, "--json",
                             f.dir + "/t.json", "--markdown", f.dir + "/t.md"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| learned routing |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| AT_A (raw space) |"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(read_file_bytes(f.dir + "/t.json"));
  ASSERT_EQ(j["rows"].size(), 6u);  // 4 experts + uniform + learned
  EXPECT_EQ(j["rows"][5]["name"], "learned routing");
  // Every task of the set: 3 zero-shot (audio, image, point) + 6 pairs x 2 directions.
  EXPECT_EQ(j["tasks"].size(), 15u);
  // The learned row covers every task, including audio->point, which no expert covers.
  EXPECT_TRUE(j["rows"][5]["metrics"].contains("audio->point"));
  EXPECT_FALSE(j["rows"][0]["metrics"].contains("audio->point"));
  EXPECT_EQ(read_file_bytes(f.dir + "/t.md").substr(0, 4), "### ");
}

TEST(EvalCli, BadInputIsOneLineExitTwoAndNothingWritten) {
  auto f = make_fixture();
  auto expect_bad = [&](std::vector<std::string> args, const std::string& needle) {
    args.insert(args.end(), {"--json", f.dir + "/bad.json"});
    auto r = testkit::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    // One line besides the progress lines ("eval: loading ...", "eval: evaluating ...").
    int lines = 0;
    for (size_t at = 0; at < r.err.size();) {
      size_t nl = r.err.find('\n', at);
      std::string line = r.err.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      if (line.rfind("eval: loading", 0) != 0 && line.rfind("eval: evaluating", 0) != 0) ++lines;
      at = nl == std::string::npos ? r.err.size() : nl + 1;
    }
    EXPECT_EQ(lines, 1) << r.err;
    EXPECT_FALSE(fs::exists(f.dir + "/bad.json"));
  };
  expect_bad({"eval", "--pools", f.dir + "/missing", "--head", f.head, "--config", f.config}, "manifest.json");
  expect_bad({"eval", "--pools", f.eval, "--head", f.dir + "/nohead.safetensors", "--config", f.config}, "nohead");
  // A config naming an expert the pool does not have (U3D renamed U4D everywhere).
  std::string cfg = read_file_bytes(f.config);
  ASSERT_NE(cfg.find("\"U3D\""), std::string::npos);
  for (size_t at; (at = cfg.find("\"U3D\"")) != std::string::npos;) cfg.replace(at, 5, "\"U4D\"");
  write_bytes_atomically(f.dir + "/other.json", cfg);
  expect_bad({"eval", "--pools", f.eval, "--head", f.head, "--config", f.dir + "/other.json"}, "U4D");
}

// Issue 16 item 6: without --config/--preset, eval reads the config `train` stored in the head.
TEST(EvalCli, TakesTheConfigFromTheHeadsMetadata) {
  auto f = make_fixture();
  auto with = testkit::run_cli({"eval", "--pools", f.eval, "--head", f.head, "--config", f.config});
  auto without = testkit::run_cli({"eval", "--pools", f.eval, "--head", f.head});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(without.out, with.out);
  // A head without that metadata says what to pass instead.
  tensor_io::write_checkpoint(f.dir + "/bare.safetensors", evaltest::random_heads(binding::load_binding_config(f.config), 5));
  auto bare = testkit::run_cli({"eval", "--pools", f.eval, "--head", f.dir + "/bare.safetensors"});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_NE(bare.err.find("pass --preset or --config"), std::string::npos) << bare.err;
  auto both = testkit::run_cli({"eval", "--pools", f.eval, "--head", f.head, "--config", f.config, "--preset", "base"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("at most one of --config and --preset"), std::string::npos) << both.err;
}
