// Localisation with known answers on the demo world (apps/demo/demo_locate.h): scenes are deterministic
// with their objects where they say; the evaluation's table has the rows and coverage it promises; and
// on the small demo's trained bundle every query modality points far above chance.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/apps/demo/demo_locate.h"
#include "omnibind/apps/demo/demo_run.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/apps/demo_world/world_scene.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/model_bundle.h"
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

TEST(LocateScenes, DeterministicWithObjectsWhereTheySay) {
  const auto world = make_world_spec(8, 3);
  WorldRng a(42), b(42);
  const Scene s1 = make_scene(world, a), s2 = make_scene(world, b);
  EXPECT_EQ(s1.image.rgb, s2.image.rgb);
  ASSERT_EQ(s1.objects.size(), 3u);
  ASSERT_EQ(s1.blank_cards.size(), 2u);
  std::vector<SceneBox> all;
  std::set<int> labels;
  for (const auto& o : s1.objects) {
    all.push_back(o.box);
    labels.insert(o.label);
    EXPECT_EQ(o.box.x, s2.objects[&o - &s1.objects[0]].box.x);
  }
  EXPECT_EQ(labels.size(), 3u) << "objects of distinct classes";
  all.insert(all.end(), s1.blank_cards.begin(), s1.blank_cards.end());
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& r = all[i];
    EXPECT_GE(r.x, 0);
    EXPECT_GE(r.y, 0);
    EXPECT_LE(r.x + r.w, 160);
    EXPECT_LE(r.y + r.h, 160);
    EXPECT_GE(r.w, 32);
    EXPECT_LE(r.w, 48);
    for (size_t j = 0; j < i; ++j) {
      const auto& q = all[j];
      EXPECT_FALSE(r.x < q.x + q.w && q.x < r.x + r.w && r.y < q.y + q.h && q.y < r.y + r.h) << "cards overlap";
    }
  }
  WorldRng c(43);
  const Scene other = make_scene(world, c);
  EXPECT_NE(other.image.rgb, s1.image.rgb);
}

TEST(LocateScenes, ImpossibleScenesAreInputErrors) {
  const auto world = make_world_spec(4, 3);
  WorldRng rng(1);
  SceneOptions o;
  o.objects = 5;
  EXPECT_NE(testkit::input_error_of([&] { make_scene(world, rng, o); }), "");
  o = {};
  o.blank_cards = 40;
  EXPECT_NE(testkit::input_error_of([&] { make_scene(world, rng, o); }).find("cannot place"), std::string::npos);
}

// The table's structure on an untrained bundle of the demo's shape (fast): every row and coverage.
TEST(LocateScenes, EvaluationRowsAndCoverage) {
  const fs::path dir = fs::path(testkit::make_temp_dir("locate_eval")) / "random";
  write_random_demo_bundle(dir, 6, 5);
  const auto bundle = pipeline::ModelBundle::load(dir / "bundle");
  LocateEvalOptions o;
  o.scenes = 1;
  o.grid.scales = {0.25, 0.5};
  const auto e = evaluate_localisation(bundle, make_world_spec(6, 5), o);
  std::vector<std::string> names;
  for (const auto& r : e.rows) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"OmniBind (unified space)", "OmniBind, plain sliding windows", "AIT alone",
                                             "IT alone", "PIT alone", "chance"}));
  auto modalities = [&](const std::string& row) {
    std::vector<std::string> m;
    for (const auto& [k, v] : e.find(row)->by_modality) {
      m.push_back(k);
      EXPECT_EQ(v.queries, 3) << row << " " << k;
      EXPECT_GE(v.pointing, 0);
      EXPECT_LE(v.pointing, 1);
    }
    return m;
  };
  const std::vector<std::string> all{"audio", "image", "point", "text"};
  EXPECT_EQ(modalities("OmniBind (unified space)"), all);
  EXPECT_EQ(modalities("chance"), all);
  EXPECT_EQ(modalities("IT alone"), (std::vector<std::string>{"image", "text"}));
  EXPECT_EQ(modalities("PIT alone"), (std::vector<std::string>{"image", "point", "text"}));
  EXPECT_EQ(modalities("AIT alone"), (std::vector<std::string>{"audio", "image", "text"}));
  const auto& chance = e.find("chance")->by_modality.at("text");
  EXPECT_GT(chance.pointing, 0.03);
  EXPECT_LT(chance.pointing, 0.1);  // a 32-48 px card on a 160 px canvas
  EXPECT_EQ(e.examples.size(), 4u);  // scene 1, first object, one per modality
  EXPECT_GT(e.regions, 0);
  const auto j = e.to_json();
  EXPECT_EQ(j["rows"].size(), 6u);
  const std::string html = render_locate_section(e);
  EXPECT_NE(html.find("Any-query localisation"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
}

// The trained small demo: localisation through the learned space is far above chance for every query
// modality (including audio and 3D, which no expert ever saw next to an image of the scene's kind), and
// the demo's report and demo.json carry it.
TEST(LocateScenes, TrainedDemoPointsFarAboveChance) {
  DemoOptions o;
  o.out = fs::path(testkit::make_temp_dir("locate_demo")) / "out";
  o.size = "small";
  o.seed = 7;
  o.threads = 1;
  const auto result = run_demo(o);
  const auto j = nlohmann::json::parse(read_text(o.out / "locate.json"));
  SCOPED_TRACE(j.dump(1));
  EXPECT_EQ(j["scenes"], demo_scale("small").locate_scenes);
  std::map<std::string, nlohmann::json> rows;
  for (const auto& r : j["rows"]) rows[r["name"]] = r["by_modality"];
  const auto& unified = rows.at("OmniBind (unified space)");
  const auto& chance = rows.at("chance");
  double mean = 0, baseline = 0;
  for (const std::string m : {"audio", "image", "point", "text"}) {
    const double p = unified[m]["pointing"], c = chance[m]["pointing"];
    EXPECT_GT(p, 4 * c) << m;
    EXPECT_GT(double(unified[m]["iou50"]), 10 * double(chance[m]["iou50"])) << m;
    mean += p / 4;
    baseline += double(rows.at("OmniBind, plain sliding windows")[m]["pointing"]) / 4;
  }
  EXPECT_GT(mean, 0.6) << "mean pointing accuracy over the four query modalities";
  EXPECT_GE(mean, baseline) << "the density heat must not point worse than the plain baseline";
  const std::string html = read_text(result.report);
  EXPECT_NE(html.find("Any-query localisation"), std::string::npos);
  const auto done = nlohmann::json::parse(read_text(o.out / "demo.json"));
  EXPECT_TRUE(done.contains("localisation"));
}

}  // namespace
}  // namespace omnibind::apps
