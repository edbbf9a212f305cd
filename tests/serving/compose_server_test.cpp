// Composable queries in the HTTP API: {"compose": [items]} in /v1/embeddings (one output per
// composition), in /v1/search and with "add"/"sub": normalize(sum_i w_i * normalize(v_i)), checked
// against the items' own embeddings; bad compositions are 4xx JSON naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "server_fixture.h"

using namespace omnibind;
using json = nlohmann::json;
using testkit::ServerFixture;

namespace {

std::vector<double> vec(const json& v) {
  std::vector<double> out;
  for (auto& x : v) out.push_back(x.get<double>());
  return out;
}

std::vector<double> embed(const ServerFixture& f, const std::string& text) {
  auto r = f.post("/v1/embeddings", json{{"input", text}}.dump());
  EXPECT_EQ(r.first, 200) << r.second.dump();
  return vec(r.second["data"][0]["embedding"]);
}

// normalize(sum w_i v_i) of unit vectors v_i.
std::vector<double> expected(const std::vector<std::vector<double>>& vs, const std::vector<double>& ws) {
  std::vector<double> s(vs[0].size(), 0.0);
  for (size_t i = 0; i < vs.size(); ++i) {
    double n = 0;
    for (double x : vs[i]) n += x * x;
    for (size_t d = 0; d < s.size(); ++d) s[d] += ws[i] * vs[i][d] / std::sqrt(n);
  }
  double n = 0;
  for (double x : s) n += x * x;
  for (double& x : s) x /= std::sqrt(n);
  return s;
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-5) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "dim " << i;
}

// Same scores rank by rank, and every item with the same score (ties may come in either order).
void expect_same_ranking(const json& a, const json& b) {
  ASSERT_EQ(a["results"].size(), b["results"].size());
  std::map<int64_t, double> score_of;
  for (auto& r : b["results"]) score_of[r["id"].get<int64_t>()] = r["score"].get<double>();
  for (size_t i = 0; i < a["results"].size(); ++i) {
    EXPECT_NEAR(a["results"][i]["score"].get<double>(), b["results"][i]["score"].get<double>(), 1e-5) << i;
    const int64_t id = a["results"][i]["id"];
    ASSERT_TRUE(score_of.count(id)) << id;
    EXPECT_NEAR(score_of[id], a["results"][i]["score"].get<double>(), 1e-5) << id;
  }
}

void expect_error(const std::pair<int, json>& r, int status, const std::string& field) {
  EXPECT_EQ(r.first, status) << r.second.dump();
  ASSERT_TRUE(r.second.is_object() && r.second.contains("error")) << r.second.dump();
  EXPECT_FALSE(r.second["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(r.second["error"]["field"], field) << r.second.dump();
}

}  // namespace

TEST(ServerCompose, EmbeddingsOfACompositionAreTheNormalisedWeightedSum) {
  ServerFixture f;
  const auto dog = embed(f, "dog"), rain = embed(f, "rain"), roof = embed(f, "roof");
  // one composition among plain inputs: outputs keep their order and count
  auto r = f.post("/v1/embeddings", R"({"input": ["dog",
      {"compose": [{"type": "text", "text": "dog"}, {"text": "rain", "weight": 2}, {"text": "roof", "weight": -0.5}]},
      "rain"]})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_EQ(r.second["data"].size(), 3u);
  expect_close(vec(r.second["data"][0]["embedding"]), dog);
  expect_close(vec(r.second["data"][1]["embedding"]), expected({dog, rain, roof}, {1, 2, -0.5}));
  expect_close(vec(r.second["data"][2]["embedding"]), rain);
  EXPECT_EQ(r.second["data"][1]["index"], 1);
  EXPECT_EQ(r.second["usage"]["prompt_tokens"], 5);
  // a single composition as the whole input; nested compositions multiply weights; ids and vectors join in
  json inner = {{"compose", json::array({"rain", json{{"vector", roof}}})}, {"weight", -2}};
  r = f.post("/v1/embeddings", json{{"input", json{{"compose", json::array({"dog", inner})}}}}.dump());
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_EQ(r.second["data"].size(), 1u);
  expect_close(vec(r.second["data"][0]["embedding"]), expected({dog, rain, roof}, {1, -2, -2}));
  const auto stored1 = embed(f, testkit::corpus()[1]);
  r = f.post("/v1/embeddings", R"({"input": [{"compose": [{"id": 1}, {"text": "dog", "weight": 0.25}]}]})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  expect_close(vec(r.second["data"][0]["embedding"]), expected({stored1, dog}, {1, 0.25}));
  // weight on the composition scales its parts: a composition of one item is that item, whatever its weight
  r = f.post("/v1/embeddings", R"({"input": {"compose": ["rain"], "weight": 3}})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  expect_close(vec(r.second["data"][0]["embedding"]), rain);
}

TEST(ServerCompose, SearchTakesCompositionsInQueryAddAndSub) {
  ServerFixture f;
  // the same composition written three ways ranks the same
  auto a = f.post("/v1/search", R"({"query": {"compose": [{"id": 3}, {"text": "dog playing", "weight": -1.5}]}, "k": 6})");
  auto b = f.post("/v1/search", R"({"query": {"id": 3}, "sub": {"compose": [{"text": "dog playing"}], "weight": 1.5}, "k": 6})");
  auto c = f.post("/v1/search", R"({"query": [{"id": 3}], "add": {"text": "dog playing", "weight": -1.5}, "k": 6})");
  ASSERT_EQ(a.first, 200) << a.second.dump();
  ASSERT_EQ(b.first, 200) << b.second.dump();
  ASSERT_EQ(c.first, 200) << c.second.dump();
  EXPECT_EQ(a.second["results"][5]["source"], "a dog barking loudly");  // minus "dog playing": the dog item last
  for (const auto* other : {&b, &c}) expect_same_ranking(a.second, other->second);
  // the composed query's scores are the index vectors' dot products with normalize(sum)
  auto emb = f.post("/v1/embeddings", R"({"input": {"compose": [{"id": 3}, {"text": "dog playing", "weight": -1.5}]}})");
  ASSERT_EQ(emb.first, 200);
  auto d = f.post("/v1/search", json{{"query", json{{"vector", emb.second["data"][0]["embedding"]}}}, {"k", 6}}.dump());
  expect_same_ranking(a.second, d.second);
}

TEST(ServerCompose, BadCompositionsNameTheField) {
  serving::ServerOptions o;
  o.max_items = 8;
  ServerFixture f(o);
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": []}]})"), 400, "input[0].compose");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": "dog"}]})"), 400, "input[0].compose");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": ["dog"], "type": "text"}]})"), 400, "input[0].type");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": ["dog"], "weight": "x"}]})"), 400, "input[0].weight");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": ["dog", {"type": "smell", "data": "aGk="}]}]})"), 400,
               "input[0].compose[1].type");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": [["dog"]]}]})"), 400, "input[0].compose[0]");
  expect_error(f.post("/v1/embeddings", R"({"input": ["x", {"compose": [{"id": 999}]}]})"), 404, "input[1].compose[0].id");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": [{"vector": [1, 2]}]}]})"), 400, "input[0].compose[0].vector");
  // the parts cancel out
  expect_error(f.post("/v1/embeddings", R"({"input": [{"compose": ["dog", {"text": "dog", "weight": -1}]}]})"), 400, "input[0]");
  expect_error(f.post("/v1/search", R"({"query": {"compose": ["dog"]}, "sub": "dog"})"), 400, "query");
  // nesting and size limits
  json deep = "dog";
  for (int i = 0; i < 6; ++i) deep = json{{"compose", json::array({deep})}};
  expect_error(f.post("/v1/embeddings", json{{"input", json::array({deep})}}.dump()), 400,
               "input[0].compose[0].compose[0].compose[0].compose[0]");
  json many = json::array();
  for (int i = 0; i < 9; ++i) many.push_back("dog");
  expect_error(f.post("/v1/search", json{{"query", json{{"compose", many}}}}.dump()), 413, "query.compose");
  json parts = json::array();
  for (int i = 0; i < 5; ++i) parts.push_back("rain");
  expect_error(f.post("/v1/search", json{{"query", json{{"compose", parts}}}, {"add", json{{"compose", parts}}}}.dump()), 413,
               "add.compose[3]");
  // without a model, compositions of stored items and vectors still work; media parts answer 503
  ServerFixture bare({}, false);
  auto r = bare.post("/v1/search", R"({"query": {"compose": [{"id": 1}, {"id": 3, "weight": 0.5}]}, "k": 1})");
  EXPECT_EQ(r.first, 200) << r.second.dump();
  expect_error(bare.post("/v1/search", R"({"query": {"compose": [{"id": 1}, "rain"]}})"), 503, "query.compose[1]");
}
