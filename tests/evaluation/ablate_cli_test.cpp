// omnibind ablate end to end on a small synthetic world: one table with the full method, the full model under
// uniform routing and the three ablations, as Markdown and JSON; bad input -> one line, exit 2, nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "testing/test_support.h"

using namespace omnibind;
namespace fs = std::filesystem;

namespace {
struct AblateFixture {
  std::string dir, train, eval, config;
};
AblateFixture make_ablate_fixture(const std::string& name) {
  AblateFixture f;
  f.dir = testkit::make_temp_dir(name);
  evaluation::SyntheticWorldOptions o;
  o.train_rows = 120;
  o.eval_tuples = 60;
  auto w = evaluation::make_synthetic_world(o);
  f.train = f.dir + "/train";
  f.eval = f.dir + "/eval";
  evaluation::write_synthetic_pools(w, f.train, f.eval);
  f.config = f.dir + "/config.json";
  write_bytes_atomically(f.config, binding::binding_config_to_json(w.binding_config(2, 16)));
  return f;
}
}  // namespace

TEST(AblateCli, WritesOneTableWithEveryVariant) {
  auto f = make_ablate_fixture("ablate_cli");
  auto r = testkit::run_cli({"ablate", "--pool", f.train, "--eval", f.eval, "--config", f.config, "--out", f.dir + "/t.md",
                             "--json", f.dir + "/t.json", "--epochs-proj", "1", "--epochs-router", "1", "--threads", "1",
                             "--seed", "3", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file_bytes(f.dir + "/t.json"));
  ASSERT_EQ(j["rows"].size(), 7u);
  std::vector<std::string> names;
  for (auto& row : j["rows"]) names.push_back(row["name"]);
  EXPECT_EQ(names[0].rfind("full: 2 heads", 0), 0u) << names[0];
  EXPECT_EQ(names[1], "full model, uniform routing");
  EXPECT_EQ(names[2], "1 head per space");
  EXPECT_EQ(names[3], "L_noise + L_align (routers < 3 slots) (no L_dec)");  // the default "denoise" objective
  EXPECT_EQ(names[4], "paper router objective (L_align + L_dec)");
  EXPECT_EQ(names[5].rfind("softmax-aggregated", 0), 0u) << names[5];
  EXPECT_EQ(names[6].rfind("L_dec as plain cross-entropy", 0), 0u) << names[6];
  // Every variant covers audio->point, which needs the binding (no expert covers it).
  for (auto& row : j["rows"]) EXPECT_TRUE(row["metrics"].contains("audio->point")) << row["name"];
  EXPECT_NE(r.out.find("| 1 head per space |"), std::string::npos) << r.out;
  EXPECT_EQ(read_file_bytes(f.dir + "/t.md").substr(0, 4), "### ");
}

TEST(AblateCli, BadInputIsOneLineExitTwoAndNothingWritten) {
  auto f = make_ablate_fixture("ablate_cli_bad");
  const std::string json = f.dir + "/bad.json";
  auto expect_bad = [&](std::vector<std::string> args, const std::string& needle) {
    args.insert(args.end(), {"--json", json, "--quiet"});
    auto r = testkit::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_FALSE(fs::exists(json));
  };
  expect_bad({"ablate", "--pool", f.dir + "/missing", "--eval", f.eval, "--config", f.config}, "missing");
  expect_bad({"ablate", "--pool", f.train, "--eval", f.dir + "/noeval", "--config", f.config}, "noeval");
  expect_bad({"ablate", "--pool", f.train, "--eval", f.eval, "--config", f.config, "--preset", "base"}, "exactly one");
  expect_bad({"ablate", "--pool", f.train, "--eval", f.eval, "--config", f.config, "--threads", "-1"}, "--threads");
  expect_bad({"ablate", "--pool", f.train, "--eval", f.eval, "--preset", "base"}, "");  // the pool lacks the preset's experts
}
