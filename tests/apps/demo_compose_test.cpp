// The demo's composable queries (demo_compose.h) on a small demo's output: the examples are built from
// the world, never return their own query items, answer the easy compositions right (a picture of one
// thing + the sound of another brings both back; minus the first thing's name leaves the second), and
// the report and demo.json carry them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/apps/demo/demo_compose.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/pipeline/model_bundle.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;

namespace {
std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(DemoCompose, ExamplesAnsweredFromTheIndexAndReported) {
  // OMNIBIND_TEST_DEMO_DIR: a finished `omnibind demo --size small --seed 7` output to reuse.
  std::string dir;
  const char* reuse = std::getenv("OMNIBIND_TEST_DEMO_DIR");
  if (reuse && *reuse && fs::exists(fs::path(reuse) / "demo.json")) {
    dir = reuse;
  } else {
    dir = testkit::make_temp_dir("demo_compose") + "/out";
    auto r = testkit::run_cli({"demo", "--size", "small", "--out", dir, "--seed", "7", "--threads", "1", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto done = nlohmann::json::parse(read_text(fs::path(dir) / "demo.json"));
  const auto world = apps::make_world_spec(apps::demo_scale(done["size"].get<std::string>()).classes, done["seed"].get<uint64_t>());
  const auto items = apps::read_world_split(fs::path(dir) / "world" / "eval.json");
  const auto bundle = pipeline::ModelBundle::load(fs::path(dir) / "bundle");
  const auto examples = apps::compose_examples(fs::path(dir) / "index", bundle, world, items, 5);
  ASSERT_GE(examples.size(), 4u);
  int64_t hits = 0, right = 0;
  for (const auto& e : examples) {
    SCOPED_TRACE(e.title);
    EXPECT_EQ(e.hits.size(), 5u);
    for (const auto& h : e.hits) {
      for (const auto& p : e.parts) EXPECT_NE(h.item, p.item) << "a query item came back";
      if (!e.gallery.empty()) EXPECT_EQ(h.item->modality, e.gallery);
    }
    for (size_t i = 1; i < e.hits.size(); ++i) EXPECT_GE(e.hits[i - 1].score, e.hits[i].score);
    hits += static_cast<int64_t>(e.hits.size());
    right += e.right;
  }
  // picture of a + sound of b -> both; the same minus "a <a>" -> b
  EXPECT_TRUE(examples[0].need_every_label);
  EXPECT_TRUE(examples[0].covered) << examples[0].title;
  EXPECT_GE(examples[0].right, 4) << examples[0].title;
  EXPECT_EQ(examples[1].right_labels.size(), 1u);
  EXPECT_GE(examples[1].right, 4) << examples[1].title;
  // what the demo itself recorded and reported
  EXPECT_EQ(done["composed_hits"].get<int64_t>(), hits);
  EXPECT_EQ(done["composed_hits_right"].get<int64_t>(), right);
  const std::string html = read_text(fs::path(dir) / "report.html");
  EXPECT_NE(html.find("<h2>Composable queries</h2>"), std::string::npos);
  for (const auto& e : examples) {
    std::string escaped;
    for (char c : e.title) escaped += c == '"' ? std::string("&quot;") : c == '>' ? std::string("&gt;") : std::string(1, c);
    EXPECT_NE(html.find(escaped), std::string::npos) << e.title;
  }
}
