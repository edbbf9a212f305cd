// `omnibind demo` at its small size, end to end: the quality a working binding must reach on held-out
// items, a well-formed report, and a bundle + index that embed and search afterwards.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/apps/demo/demo_lineup.h"
#include "omnibind/apps/demo/demo_run.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/apps/demo/demo_zoo.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/retrieval/vector_index.h"
#include "testing/test_support.h"

namespace omnibind::apps {
namespace {
namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One small demo run (20-50 s on 2 cores), checked by the helpers below from one test: ctest runs every
// test in its own process, so separate tests would each pay for a run.
DemoResult small_demo() {
  DemoOptions o;
  o.out = fs::path(testkit::make_temp_dir("demo_run")) / "out";
  o.size = "small";
  o.seed = 7;
  o.threads = 1;
  return run_demo(o);
}

double headline(const evaluation::EvalTable& t, const std::string& row, const std::string& task) {
  const auto* r = t.find(row);
  EXPECT_NE(r, nullptr) << row;
  for (const auto& k : t.tasks)
    if (k.key() == task) return r ? r->headline(k) : 0;
  ADD_FAILURE() << "no task " << task;
  return 0;
}

double r_at_1(const evaluation::EvalTable& t, const std::string& row, const std::string& task) {
  const auto* r = t.find(row);
  if (!r || !r->retrieval.count(task)) {
    ADD_FAILURE() << row << " has no " << task;
    return 0;
  }
  return r->retrieval.at(task).r1;
}

void expect_binding_quality(const DemoResult& r) {
  const auto& t = r.table;
  SCOPED_TRACE(t.to_markdown());
  // A true match is any held-out item of the query's class: chance for R@1 and top-1 is 1 / classes.
  const double chance = 1.0 / demo_scale("small").classes;
  // Audio and 3D were never seen together by any expert: their retrieval exists only through binding.
  EXPECT_GT(r_at_1(t, "learned routing", "audio->point"), 2.5 * chance);
  EXPECT_GT(r_at_1(t, "learned routing", "point->audio"), 2.5 * chance);
  for (const std::string m : {"audio", "image", "point"})
    EXPECT_GT(headline(t, "learned routing", "zero-shot/" + m), 3 * chance) << m;
  // Binding must not lose much of what the backbone knew, and the whole must beat every single space.
  EXPECT_GE(headline(t, "learned routing", "zero-shot/image"), headline(t, "IT (raw space)", "zero-shot/image") - 0.1);
  const double learned = t.composite(*t.find("learned routing"));
  for (const auto& row : t.rows)
    if (row.kind == "expert") EXPECT_GT(learned, t.composite(row) + 0.1) << row.name;
  EXPECT_GT(r.query_hits_right * 2, r.query_hits) << "most any-to-any query results should be of the query's class";
}

void expect_self_contained_report(const DemoResult& r) {
  const std::string html = read_text(r.report);
  ASSERT_GT(html.size(), 10000u);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_NE(html.find("learned routing"), std::string::npos);
  EXPECT_NE(html.find("audio-&gt;point"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("data:audio/wav;base64,"), std::string::npos);
  EXPECT_EQ(html.find("src='http"), std::string::npos) << "no external assets";
  const auto done = nlohmann::json::parse(read_text(r.report.parent_path() / "demo.json"));
  EXPECT_EQ(done.at("format"), "omnibind-demo");
  EXPECT_TRUE(fs::exists(r.report.parent_path() / "table.md"));
}

void expect_bundle_and_index_usable(const DemoResult& r) {
  const auto bundle = pipeline::ModelBundle::load(r.bundle);
  EXPECT_EQ(bundle.modalities().size(), 4u);
  at::Tensor u = bundle.embed(experts::Modality::Text, {experts::MediaInput::from_text("a loud buzzing sound")});
  ASSERT_EQ(u.dim(), 2);
  EXPECT_NEAR(u.norm().item<double>(), 1.0, 1e-4);
  auto index = retrieval::VectorIndex::open(r.index.string(), retrieval::VectorIndex::Mode::ReadOnly);
  EXPECT_GT(index->size(), 0);
  u = u.contiguous();
  EXPECT_EQ(index->search(u.data_ptr<float>(), 5).size(), 5u);
}

TEST(DemoRun, SmallWorldEndToEnd) {
  const DemoResult r = small_demo();
  {
    SCOPED_TRACE("binding quality");
    expect_binding_quality(r);
  }
  {
    SCOPED_TRACE("report");
    expect_self_contained_report(r);
  }
  {
    SCOPED_TRACE("bundle and index");
    expect_bundle_and_index_usable(r);
  }
}

TEST(DemoRun, RefusesToClobberADirectoryItDidNotWrite) {
  const fs::path dir = testkit::make_temp_dir("demo_clobber");
  std::ofstream(dir / "precious.txt") << "keep me";
  DemoOptions o;
  o.out = dir;
  o.size = "small";
  EXPECT_THROW(run_demo(o), InputError);
  EXPECT_TRUE(fs::exists(dir / "precious.txt"));
  o.size = "huge";
  o.out = dir / "new";
  EXPECT_THROW(run_demo(o), InputError);
}

TEST(DemoRun, ExpertTrainingIsDeterministicForASeed) {
  const fs::path dir = testkit::make_temp_dir("demo_determinism");
  const auto world = make_world_spec(4, 3);
  const auto paired = write_world_split(world, dir, {"paired", 4, true, true, true, false, 1});
  const auto lineup = demo_lineup(4);
  DemoZooTraining t;
  t.epochs = 2;
  t.seed = 5;
  at::set_num_threads(1);
  const auto a = train_demo_expert(lineup[1], world, paired, t), b = train_demo_expert(lineup[1], world, paired, t);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) EXPECT_TRUE(at::equal(tensor, b.at(name))) << name;
}

}  // namespace
}  // namespace omnibind::apps
