// POST /v1/locate over the demo's bundle: a scene of two world pictures at known places; the answer
// must be what the localisation library computes for the same picture and query, point at the right
// picture for text, image and composed queries, reuse the cached regions for a second query, and every
// bad request is a 4xx JSON error naming the field.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>

#include "locate_fixture.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/retrieval/bundle_query_embedder.h"
#include "omnibind/retrieval/localisation.h"
#include "server_fixture.h"

using namespace omnibind;
using json = nlohmann::json;

namespace {

#define REQUIRE_DEMO(d)                                  \
  const auto& d = testkit::demo_output();                \
  ASSERT_TRUE(d.error.empty()) << d.error;               \
  auto pick = testkit::pick_pictures(d);                 \
  ASSERT_TRUE(pick.ok) << d.pictures.size() << " pictures in the demo index"

std::unique_ptr<retrieval::QueryEmbedder> demo_embedder(const testkit::DemoOutput& d) {
  retrieval::EmbedderSpec spec;
  spec.model = d.bundle;
  return retrieval::make_query_embedder(spec);
}

// A small grid keeps the tests quick: windows of 0.35 and 0.7 of the shorter side.
json grid() { return json{{"scales", {0.35, 0.7}}, {"stride", 0.25}, {"heat_cells", 48}}; }

json locate_body(const testkit::Scene& s, const json& query) {
  json b = grid();
  b["image"] = {{"type", "image"}, {"data", s.base64()}, {"name", "scene.png"}};
  b["query"] = query;
  b["k"] = 3;
  return b;
}

void expect_well_formed(const json& r, int width, int height, size_t k) {
  EXPECT_EQ(r["image"]["width"], width);
  EXPECT_EQ(r["image"]["height"], height);
  const int hw = r["heat"]["width"], hh = r["heat"]["height"];
  EXPECT_GT(hw, 0);
  EXPECT_GT(hh, 0);
  ASSERT_EQ(r["heat"]["values"].size(), size_t(hh));
  const double lo = r["heat"]["min"], hi = r["heat"]["max"];
  EXPECT_LE(lo, hi);
  for (auto& row : r["heat"]["values"]) {
    ASSERT_EQ(row.size(), size_t(hw));
    for (auto& v : row) {
      EXPECT_GE(v.get<double>(), lo - 1e-6);
      EXPECT_LE(v.get<double>(), hi + 1e-6);
    }
  }
  ASSERT_GE(r["boxes"].size(), 1u);
  EXPECT_LE(r["boxes"].size(), k);
  double last = 2;
  for (auto& b : r["boxes"]) {
    EXPECT_GE(b["x"].get<int>(), 0);
    EXPECT_GE(b["y"].get<int>(), 0);
    EXPECT_GT(b["w"].get<int>(), 0);
    EXPECT_GT(b["h"].get<int>(), 0);
    EXPECT_LE(b["x"].get<int>() + b["w"].get<int>(), width);
    EXPECT_LE(b["y"].get<int>() + b["h"].get<int>(), height);
    EXPECT_LE(b["score"].get<double>(), last + 1e-6);
    last = b["score"];
  }
  EXPECT_GT(r["regions"].get<int>(), 0);
  EXPECT_GE(r["peak"]["x"].get<double>(), 0);
  EXPECT_LT(r["peak"]["x"].get<double>(), width);
}

void expect_same_heat(const json& a, const json& b, double tol) {
  ASSERT_EQ(a["heat"]["values"].size(), b["heat"]["values"].size());
  for (size_t y = 0; y < a["heat"]["values"].size(); ++y)
    for (size_t x = 0; x < a["heat"]["values"][y].size(); ++x)
      EXPECT_NEAR(a["heat"]["values"][y][x].get<double>(), b["heat"]["values"][y][x].get<double>(), tol) << y << "," << x;
}

void expect_error(const std::pair<int, json>& r, int status, const std::string& field) {
  EXPECT_EQ(r.first, status) << r.second.dump().substr(0, 400);
  ASSERT_TRUE(r.second.is_object() && r.second.contains("error")) << r.second.dump().substr(0, 400);
  EXPECT_FALSE(r.second["error"]["message"].get<std::string>().empty());
  if (field.empty()) EXPECT_TRUE(r.second["error"]["field"].is_null()) << r.second.dump().substr(0, 400);
  else EXPECT_EQ(r.second["error"]["field"], field) << r.second.dump().substr(0, 400);
}

}  // namespace

TEST(ServerLocate, AnswersWhatTheLibraryComputesAndCachesThePicture) {
  REQUIRE_DEMO(d);
  auto scene = testkit::make_scene(pick.a, pick.b);
  testkit::LocateServer srv(d.index, demo_embedder(d));
  const std::string text_a = "a picture of a " + pick.a.cls, text_b = "a picture of a " + pick.b.cls;

  auto r = srv.post("/v1/locate", locate_body(scene, text_a));
  ASSERT_EQ(r.first, 200) << r.second.dump().substr(0, 400);
  expect_well_formed(r.second, 192, 96, 3);
  EXPECT_FALSE(r.second["cached"].get<bool>());
  EXPECT_EQ(r.second["model"], srv.embedder->name());

  // The library on the same picture and query gives the same heatmap and boxes.
  auto bundle = dynamic_cast<const retrieval::BundleQueryEmbedder*>(srv.embedder.get());
  ASSERT_NE(bundle, nullptr);
  retrieval::RegionGrid g;
  g.scales = {0.35, 0.7};
  g.stride = 0.25;
  g.heat_cells = 48;
  auto regions = retrieval::embed_regions(bundle->bundle(), media::decode_image_bytes(scene.png, "scene.png"), g);
  retrieval::LocateOptions lo;
  lo.top_k = 3;
  auto want = retrieval::locate_json(retrieval::locate(regions, retrieval::compose_media_query(*srv.embedder, {retrieval::QueryItem::text(text_a)}), lo));
  expect_same_heat(r.second, want, 1e-5);
  EXPECT_EQ(r.second["boxes"].size(), want["boxes"].size());
  for (size_t i = 0; i < want["boxes"].size(); ++i)
    for (const char* k : {"x", "y", "w", "h"}) EXPECT_EQ(r.second["boxes"][i][k], want["boxes"][i][k]) << i << k;
  EXPECT_EQ(r.second["regions"], want["regions"]);

  // A second query on the same picture reuses its regions; the same picture by another name too.
  auto r2 = srv.post("/v1/locate", locate_body(scene, text_b));
  ASSERT_EQ(r2.first, 200) << r2.second.dump().substr(0, 400);
  EXPECT_TRUE(r2.second["cached"].get<bool>());
  auto body = locate_body(scene, text_a);
  body["image"]["name"] = "other.png";
  auto r3 = srv.post("/v1/locate", body);
  ASSERT_EQ(r3.first, 200);
  EXPECT_TRUE(r3.second["cached"].get<bool>());
  expect_same_heat(r3.second, r.second, 0);
  // The baseline heat on the same cached regions, as the library computes it.
  body = locate_body(scene, text_a);
  body["heat"] = "mean_cosine";
  auto r5 = srv.post("/v1/locate", body);
  ASSERT_EQ(r5.first, 200) << r5.second.dump().substr(0, 400);
  EXPECT_TRUE(r5.second["cached"].get<bool>());
  lo.heat = retrieval::HeatMethod::MeanCosine;
  expect_same_heat(r5.second, retrieval::locate_json(retrieval::locate(regions, retrieval::compose_media_query(*srv.embedder, {retrieval::QueryItem::text(text_a)}), lo)), 1e-5);
  body.erase("heat");
  body["image"]["name"] = "other.png";
  // Another grid is another set of regions.
  body["stride"] = 0.5;
  auto r4 = srv.post("/v1/locate", body);
  ASSERT_EQ(r4.first, 200);
  EXPECT_FALSE(r4.second["cached"].get<bool>());
  EXPECT_LT(r4.second["regions"].get<int>(), r.second["regions"].get<int>());
}

// Known answers: for every class, a scene of its first picture and the next class's; each of the two
// is asked for by text, by another picture of its class, and by a composition (that picture + the
// caption − the other object's caption). The heat's peak must be on the asked-for picture in most
// cases (a picture covers 22% of the scene: chance is about 1 in 4.5). Default grid, as a user gets it;
// the six queries on a scene share one region pass (the cache).
TEST(ServerLocate, PointsAtThePictureTheQueryIsAbout) {
  REQUIRE_DEMO(d);
  testkit::LocateServer srv(d.index, demo_embedder(d));
  const auto firsts = testkit::first_of_each_class(d);
  ASSERT_GE(firsts.size(), 2u);
  std::map<std::string, int> right;
  int asked = 0, cached = 0;
  for (size_t i = 0; i < firsts.size(); ++i) {
    auto scene = testkit::make_scene(firsts[i], firsts[(i + 1) % firsts.size()]);
    for (int w = 0; w < 2; ++w) {
      const auto& target = w ? scene.b : scene.a;
      const auto& other = w ? scene.a : scene.b;
      const auto another = testkit::another_of_class(d, target);
      ASSERT_GE(another.id, 0) << target.cls;
      const json picture = {{"type", "image"}, {"data", serving::base64_encode(read_file_bytes(another.path))}};
      const std::map<std::string, json> queries = {
          {"text", "a picture of a " + target.cls},
          {"image", picture},
          {"composed", json{{"compose", {picture, "a picture of a " + target.cls,
                                         json{{"text", "a picture of a " + other.cls}, {"weight", -0.5}}}}}}};
      for (const auto& [kind, q] : queries) {
        json body = {{"image", {{"data", scene.base64()}}}, {"query", q}};
        auto r = srv.post("/v1/locate", body);
        ASSERT_EQ(r.first, 200) << r.second.dump().substr(0, 300);
        cached += r.second["cached"].get<bool>();
        const double x = r.second["peak"]["x"], y = r.second["peak"]["y"];
        const bool hit = w ? scene.in_b(x, y) : scene.in_a(x, y);
        right[kind] += hit;
        if (!hit) std::printf("  %s query for %s peaks at (%.0f, %.0f), off its picture\n", kind.c_str(), target.cls.c_str(), x, y);
      }
      ++asked;
    }
  }
  EXPECT_EQ(cached, 3 * asked - int(firsts.size()));  // one region pass per scene
  for (const auto& [kind, n] : right) {
    std::printf("pointing, %s queries: %d of %d\n", kind.c_str(), n, asked);
    EXPECT_GE(3 * n, 2 * asked) << kind << " queries point at the right picture in " << n << " of " << asked;
  }
}

TEST(ServerLocate, ComposedQueriesAreNormalisedWeightedSums) {
  REQUIRE_DEMO(d);
  auto scene = testkit::make_scene(pick.a, pick.b);
  testkit::LocateServer srv(d.index, demo_embedder(d));
  const std::string text_a = "a picture of a " + pick.a.cls, text_b = "a picture of a " + pick.b.cls;
  auto only_b = srv.post("/v1/locate", locate_body(scene, text_b));
  ASSERT_EQ(only_b.first, 200) << only_b.second.dump().substr(0, 400);
  // a + b - a == b (to rounding), written with "sub" and with signed weights in a composition
  auto body = locate_body(scene, json::array({text_a, text_b}));
  body["sub"] = text_a;
  auto r = srv.post("/v1/locate", body);
  ASSERT_EQ(r.first, 200) << r.second.dump().substr(0, 400);
  expect_same_heat(r.second, only_b.second, 1e-4);
  r = srv.post("/v1/locate", locate_body(scene, json{{"compose", {text_a, text_b, json{{"text", text_a}, {"weight", -1}}}}}));
  ASSERT_EQ(r.first, 200) << r.second.dump().substr(0, 400);
  expect_same_heat(r.second, only_b.second, 1e-4);
  // the composition's vector from /v1/embeddings locates exactly like the composition itself
  const json picture_a = {{"type", "image"}, {"data", serving::base64_encode(read_file_bytes(pick.a_other.path))}, {"weight", 2}};
  const json composition = {{"compose", {picture_a, text_a, json{{"text", text_b}, {"weight", -0.5}}}}};
  auto emb = srv.post("/v1/embeddings", json{{"input", json::array({composition})}});
  ASSERT_EQ(emb.first, 200) << emb.second.dump().substr(0, 400);
  auto by_items = srv.post("/v1/locate", locate_body(scene, composition));
  auto by_vector = srv.post("/v1/locate", locate_body(scene, json{{"vector", emb.second["data"][0]["embedding"]}}));
  ASSERT_EQ(by_items.first, 200) << by_items.second.dump().substr(0, 400);
  ASSERT_EQ(by_vector.first, 200) << by_vector.second.dump().substr(0, 400);
  expect_same_heat(by_items.second, by_vector.second, 1e-5);
  // stored items join in by id: the indexed vector of a's other picture is its embedding
  const json stored = {{"compose", {json{{"id", pick.a_other.id}, {"weight", 2}}, text_a, json{{"text", text_b}, {"weight", -0.5}}}}};
  auto by_id = srv.post("/v1/locate", locate_body(scene, stored));
  ASSERT_EQ(by_id.first, 200) << by_id.second.dump().substr(0, 400);
  expect_same_heat(by_id.second, by_items.second, 1e-4);
}

TEST(ServerLocate, PictureByIdNeedsAnAllowedPath) {
  REQUIRE_DEMO(d);
  serving::ServerOptions o;
  o.allow_paths = {d.world};
  testkit::LocateServer srv(d.index, demo_embedder(d), o);
  json body = grid();
  body["image"] = {{"id", pick.a.id}};
  body["query"] = "a picture of a " + pick.a.cls;
  auto r = srv.post("/v1/locate", body);
  ASSERT_EQ(r.first, 200) << r.second.dump().substr(0, 400);
  const auto picture = media::decode_image_file(pick.a.path);
  expect_well_formed(r.second, picture.width, picture.height, 5);
  // the same bytes uploaded are the same cached picture
  body["image"] = {{"data", serving::base64_encode(read_file_bytes(pick.a.path))}};
  r = srv.post("/v1/locate", body);
  ASSERT_EQ(r.first, 200);
  EXPECT_TRUE(r.second["cached"].get<bool>());

  testkit::LocateServer closed(d.index, demo_embedder(d));
  body["image"] = {{"id", pick.a.id}};
  expect_error(closed.post("/v1/locate", body), 403, "image.id");
}

TEST(ServerLocate, BadRequestsNameTheField) {
  REQUIRE_DEMO(d);
  auto scene = testkit::make_scene(pick.a, pick.b);
  testkit::LocateServer srv(d.index, demo_embedder(d));
  const json ok = locate_body(scene, "a picture of a " + pick.a.cls);
  auto with = [&](const std::string& key, const json& value) {
    json b = ok;
    if (value.is_null()) b.erase(key);
    else b[key] = value;
    return srv.post("/v1/locate", b);
  };
  expect_error(with("image", nullptr), 400, "image");
  expect_error(with("image", "scene.png"), 400, "image");
  expect_error(with("image", json{{"data", "@@@"}}), 400, "image.data");
  expect_error(with("image", json{{"data", serving::base64_encode("not a picture at all")}}), 400, "image");
  expect_error(with("image", json{{"type", "audio"}, {"data", scene.base64()}}), 400, "image.type");
  expect_error(with("image", json{{"type", "smell"}, {"data", scene.base64()}}), 400, "image.type");
  expect_error(with("image", json{{"path", pick.a.path}}), 403, "image.path");
  expect_error(with("image", json{{"id", 99999}}), 404, "image.id");
  expect_error(with("image", json{{"id", -3}}), 400, "image.id");
  int64_t text_id = -1;
  srv.index->for_each([&](const retrieval::ItemRecord& rec, const float*) { if (text_id < 0 && rec.modality == "text") text_id = rec.id; }, false);
  ASSERT_GE(text_id, 0);
  expect_error(with("image", json{{"id", text_id}}), 400, "image.id");
  expect_error(with("query", nullptr), 400, "query");
  expect_error(with("query", json::array()), 400, "query");
  expect_error(with("query", json{{"type", "audio"}, {"data", "!!"}}), 400, "query.data");
  expect_error(with("query", json{{"compose", {"a", json{{"text", "a"}, {"weight", -1}}}}}), 400, "query");
  expect_error(with("query", json{{"vector", {1, 2, 3}}}), 400, "query.vector");
  expect_error(with("query", json{{"id", 99999}}), 404, "query.id");
  expect_error(with("k", 0), 400, "k");
  expect_error(with("k", "three"), 400, "k");
  expect_error(with("scales", json::array()), 400, "scales");
  expect_error(with("scales", {0.5, 1.5}), 400, "scales[1]");
  expect_error(with("scales", "0.5"), 400, "scales");
  expect_error(with("stride", 0), 400, "stride");
  expect_error(with("heat_cells", 100000), 400, "heat_cells");
  expect_error(with("heat", "hottest"), 400, "heat");
  expect_error(with("heat", 1), 400, "heat");
  expect_error(srv.post("/v1/locate", json::array()), 400, "");
  // garbage never gets past 4xx
  std::mt19937 rng(5);
  std::vector<json> bodies = {json(nullptr), json::array(), json{{"image", nullptr}}, json{{"image", json::array()}},
                              json{{"image", {{"data", ""}}}, {"query", "x"}}, json{{"image", {{"id", 1.5}}}, {"query", "x"}},
                              json{{"image", {{"data", serving::base64_encode(scene.png.substr(0, 100))}}}, {"query", "x"}},
                              json{{"image", {{"data", scene.base64()}}}, {"query", {{"compose", json::array({nullptr})}}}}};
  for (int i = 0; i < 20; ++i) {
    std::string junk(std::uniform_int_distribution<int>(1, 400)(rng), ' ');
    for (auto& c : junk) c = static_cast<char>(rng());
    bodies.push_back(json{{"image", {{"data", serving::base64_encode(junk)}}}, {"query", "x"}});
  }
  for (const auto& b : bodies) {
    auto r = srv.post("/v1/locate", b);
    EXPECT_GE(r.first, 400) << b.dump().substr(0, 80);
    EXPECT_LT(r.first, 500) << b.dump().substr(0, 80) << " -> " << r.second.dump().substr(0, 200);
    EXPECT_TRUE(r.second.is_object() && r.second.contains("error")) << b.dump().substr(0, 80);
  }
  // the server still answers
  EXPECT_EQ(srv.post("/v1/locate", ok).first, 200);
}

TEST(ServerLocate, NeedsABundleWithAnImagePathway) {
  testkit::ServerFixture hash;  // one expert (text/audio hashing), not a bundle
  const json body = {{"image", {{"data", serving::base64_encode("x")}}}, {"query", "a dog"}};
  auto r = hash.post("/v1/locate", body.dump());
  EXPECT_EQ(r.first, 503) << r.second.dump();
  EXPECT_EQ(r.second["error"]["field"], "image");
  testkit::ServerFixture none({}, false);
  r = none.post("/v1/locate", body.dump());
  EXPECT_EQ(r.first, 503) << r.second.dump();
  EXPECT_EQ(r.second["error"]["field"], "image");
}
