// The HTTP API: OpenAI-style embeddings, search, items, Weaviate /vectorize, auth, the page.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "omnibind/serving/base64.h"
#include "omnibind/serving/embed_batcher.h"
#include "server_fixture.h"

using namespace omnibind;
using json = nlohmann::json;
using testkit::ServerFixture;

namespace {
double norm(const json& v) {
  double s = 0;
  for (auto& x : v) s += x.get<double>() * x.get<double>();
  return std::sqrt(s);
}
void expect_error(const std::pair<int, json>& r, int status, const std::string& field) {
  EXPECT_EQ(r.first, status) << r.second.dump();
  ASSERT_TRUE(r.second.is_object()) << "not JSON";
  ASSERT_TRUE(r.second.contains("error"));
  EXPECT_TRUE(r.second["error"]["message"].is_string());
  EXPECT_FALSE(r.second["error"]["message"].get<std::string>().empty());
  if (field.empty()) EXPECT_TRUE(r.second["error"]["field"].is_null()) << r.second.dump();
  else EXPECT_EQ(r.second["error"]["field"], field) << r.second.dump();
}
}  // namespace

TEST(Base64, RoundTripsAndRejectsGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto d = serving::base64_decode(serving::base64_encode(s));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(*serving::base64_decode("aGVsbG8"), "hello");              // padding optional
  EXPECT_EQ(*serving::base64_decode("data:audio/wav;base64,aGk="), "hi");
  EXPECT_FALSE(serving::base64_decode("a$bc"));
  EXPECT_FALSE(serving::base64_decode("abcde"));
  EXPECT_FALSE(serving::base64_decode("ab=c"));
}

TEST(Server, OpenAIEmbeddings) {
  ServerFixture f;
  auto r = f.post("/v1/embeddings", R"({"input": "a dog barking", "model": "x"})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["object"], "list");
  ASSERT_EQ(r.second["data"].size(), 1u);
  EXPECT_EQ(r.second["data"][0]["object"], "embedding");
  EXPECT_EQ(r.second["data"][0]["index"], 0);
  EXPECT_EQ(r.second["data"][0]["embedding"].size(), 64u);
  EXPECT_NEAR(norm(r.second["data"][0]["embedding"]), 1.0, 1e-5);
  EXPECT_EQ(r.second["model"], "test-hash");
  EXPECT_EQ(r.second["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(r.second["usage"]["total_tokens"], 3);
  // arrays, base64 floats, media items
  std::string audio_b64 = serving::base64_encode("RIFF....WAVEfmt some audio bytes");
  r = f.post("/v1/embeddings", json{{"input", {"a dog barking", "rain", {{"type", "audio"}, {"data", audio_b64}}}},
                                    {"encoding_format", "base64"}}.dump());
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_EQ(r.second["data"].size(), 3u);
  auto bytes = serving::base64_decode(r.second["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes);
  ASSERT_EQ(bytes->size(), 64u * 4);
  std::vector<float> v(64);
  std::memcpy(v.data(), bytes->data(), bytes->size());
  auto plain = f.post("/v1/embeddings", R"({"input": ["a dog barking"]})").second["data"][0]["embedding"];
  for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(v[i], plain[i].get<float>());
  EXPECT_EQ(r.second["data"][2]["index"], 2);
}

TEST(Server, EmbeddingsErrorsNameTheField) {
  ServerFixture f;
  expect_error(f.post("/v1/embeddings", "{}"), 400, "input");
  expect_error(f.post("/v1/embeddings", R"({"input": 5})"), 400, "input");
  expect_error(f.post("/v1/embeddings", R"({"input": []})"), 400, "input");
  expect_error(f.post("/v1/embeddings", R"({"input": [[1, 2, 3]]})"), 400, "input[0]");
  expect_error(f.post("/v1/embeddings", R"({"input": ["ok", 7]})"), 400, "input[1]");
  expect_error(f.post("/v1/embeddings", R"({"input": "x", "encoding_format": "hex"})"), 400, "encoding_format");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"type": "audio", "data": "!!notbase64"}]})"), 400, "input[0].data");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"type": "smell", "data": "aGk="}]})"), 400, "input[0].type");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"data": "aGk="}]})"), 400, "input[0].type");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"type": "image", "path": "/etc/passwd"}]})"), 403, "input[0].path");
  expect_error(f.post("/v1/embeddings", R"({"input": [{"type": "image", "data": "aGk="}]})"), 400, "input[0]");  // too short to decode
  expect_error(f.post("/v1/embeddings", R"({"input": "x", "dimensions": 3})"), 400, "dimensions");
  expect_error(f.post("/v1/embeddings", "not json"), 400, "");
  expect_error(f.post("/v1/embeddings", "[1,2]"), 400, "");
}

TEST(Server, NoModelMeansIdAndVectorSearchOnly) {
  ServerFixture f({}, false);
  expect_error(f.post("/v1/embeddings", R"({"input": "x"})"), 503, "input");
  expect_error(f.post("/v1/search", R"({"query": "a dog"})"), 503, "query");
  auto r = f.post("/v1/search", R"({"query": {"id": 1}, "k": 2})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["results"][0]["id"], 1);
}

TEST(Server, SearchByTextIdVectorWithCompositionAndFilters) {
  ServerFixture f;
  auto r = f.post("/v1/search", R"({"query": "dog barking", "k": 3})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_EQ(r.second["results"].size(), 3u);
  EXPECT_EQ(r.second["results"][0]["source"], "a dog barking loudly");
  EXPECT_GE(r.second["results"][0]["score"].get<double>(), r.second["results"][1]["score"].get<double>());
  EXPECT_TRUE(r.second["results"][0]["media_url"].is_null());  // no --allow-paths
  // composition: "dog" plus "rain" -> the item about both
  r = f.post("/v1/search", R"({"query": [{"text": "dog"}, {"type": "text", "text": "rain", "weight": 1.0}], "k": 1})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["results"][0]["source"], "dog playing in the rain");
  // sub: "dog playing in the rain" minus dog -> rain item first
  r = f.post("/v1/search", R"({"query": {"id": 3}, "sub": [{"text": "dog playing", "weight": 1.5}], "k": 1})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["results"][0]["source"], "rain falling on a roof");
  // vector query
  auto emb = f.post("/v1/embeddings", R"({"input": "red car"})").second["data"][0]["embedding"];
  r = f.post("/v1/search", json{{"query", {{"vector", emb}}}, {"k", 1}}.dump());
  EXPECT_EQ(r.second["results"][0]["source"], "a red car engine starting");
  // filters
  r = f.post("/v1/search", R"({"query": "dog", "modality": "audio", "k": 10})");
  ASSERT_EQ(r.first, 200);
  EXPECT_EQ(r.second["results"].size(), 3u);
  for (auto& x : r.second["results"]) EXPECT_EQ(x["modality"], "audio");
  r = f.post("/v1/search", R"({"query": "dog", "where": {"kind": "second", "n": 4}, "k": 10})");
  ASSERT_EQ(r.second["results"].size(), 1u);
  EXPECT_EQ(r.second["results"][0]["id"], 4);
}

TEST(Server, SearchErrorsNameTheField) {
  ServerFixture f;
  expect_error(f.post("/v1/search", "{}"), 400, "query");
  expect_error(f.post("/v1/search", R"({"query": {"id": 999}})"), 404, "query.id");
  expect_error(f.post("/v1/search", R"({"query": {"id": -1}})"), 400, "query.id");
  expect_error(f.post("/v1/search", R"({"query": {"id": "7"}})"), 400, "query.id");
  expect_error(f.post("/v1/search", R"({"query": {"vector": [1, 2]}})"), 400, "query.vector");
  expect_error(f.post("/v1/search", R"({"query": {"vector": "x"}})"), 400, "query.vector");
  expect_error(f.post("/v1/search", R"({"query": "x", "k": 0})"), 400, "k");
  expect_error(f.post("/v1/search", R"({"query": "x", "k": 1e9})"), 400, "k");
  expect_error(f.post("/v1/search", R"({"query": "x", "k": 99999999999999999999})"), 400, "k");
  expect_error(f.post("/v1/search", R"({"query": "x", "modality": "smell"})"), 400, "modality");
  expect_error(f.post("/v1/search", R"({"query": "x", "modality": 3})"), 400, "modality");
  expect_error(f.post("/v1/search", R"({"query": "x", "where": [1]})"), 400, "where");
  expect_error(f.post("/v1/search", R"({"query": "x", "where": {"a": {"b": 1}}})"), 400, "where.a");
  expect_error(f.post("/v1/search", R"({"query": [{"id": 0}, {"id": 0, "weight": -1}]})"), 400, "query");
  expect_error(f.post("/v1/search", R"({"query": {"id": 0, "weight": "heavy"}})"), 400, "query.weight");
  expect_error(f.post("/v1/search", R"({"query": [{"type": "audio", "data": "@@@"}]})"), 400, "query[0].data");
}

TEST(Server, ItemsAddGetDelete) {
  ServerFixture f;
  std::vector<float> v(64, 0.f);
  v[5] = 1.f;
  auto r = f.post("/v1/items", json{{"items", {{{"vector", v}, {"modality", "point"}, {"source", "chair.ply"},
                                                {"labels", {"chair"}}, {"metadata", {{"set", "m10"}}}},
                                               {{"type", "text"}, {"text", "a chair"}}}}}.dump());
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_EQ(r.second["ids"].size(), 2u);
  const int64_t id = r.second["ids"][0];
  EXPECT_EQ(id, 6);
  auto c = f.client();
  auto g = c.Get(("/v1/items/" + std::to_string(id)).c_str());
  ASSERT_TRUE(g);
  auto item = json::parse(g->body);
  EXPECT_EQ(item["source"], "chair.ply");
  EXPECT_EQ(item["modality"], "point");
  EXPECT_EQ(item["metadata"]["set"], "m10");
  auto s = f.post("/v1/search", json{{"query", {{"vector", v}}}, {"k", 1}}.dump());
  EXPECT_EQ(s.second["results"][0]["id"], id);
  auto d = c.Delete(("/v1/items/" + std::to_string(id)).c_str());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 200);
  d = c.Delete(("/v1/items/" + std::to_string(id)).c_str());
  EXPECT_EQ(d->status, 404);
  g = c.Get("/v1/items/12345");
  EXPECT_EQ(g->status, 404);
  EXPECT_EQ(json::parse(g->body)["error"]["field"], "id");
  expect_error(f.post("/v1/items", R"({"items": [{"vector": [1]}]})"), 400, "items[0].vector");
  expect_error(f.post("/v1/items", json{{"items", {{{"vector", v}}}}}.dump()), 400, "items[0].modality");
  expect_error(f.post("/v1/items", json{{"items", {{{"vector", v}, {"modality", "point"}, {"metadata", 3}}}}}.dump()), 400,
               "items[0].metadata");
  expect_error(f.post("/v1/items", json{{"items", {{{"vector", std::vector<float>(64, 0.f)}, {"modality", "point"}}}}}.dump()),
               400, "items");
  EXPECT_EQ(f.index->size(), 7);
}

TEST(Server, WeaviateVectorizeMetaAndProbes) {
  ServerFixture f;
  std::string img = serving::base64_encode("\x89PNG fake image bytes for hashing");
  auto r = f.post("/vectorize", json{{"texts", {"a dog", "a cat"}}, {"images", {img}}, {"audio", json::array()}}.dump());
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["textVectors"].size(), 2u);
  EXPECT_EQ(r.second["textVectors"][0].size(), 64u);
  EXPECT_EQ(r.second["imageVectors"].size(), 1u);
  EXPECT_EQ(r.second["audioVectors"].size(), 0u);
  for (auto k : {"videoVectors", "imuVectors", "thermalVectors", "depthVectors"}) EXPECT_TRUE(r.second[k].is_array()) << k;
  expect_error(f.post("/vectorize", R"({"video": ["aGk="]})"), 400, "video");
  expect_error(f.post("/vectorize", R"({"images": ["%%%"]})"), 400, "images[0]");
  expect_error(f.post("/vectorize", R"({"texts": "a dog"})"), 400, "texts");
  expect_error(f.post("/vectorize", R"({"texts": [1]})"), 400, "texts[0]");
  auto c = f.client();
  auto m = c.Get("/meta");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["model"]["name"], "test-hash");
  EXPECT_EQ(c.Get("/.well-known/live")->status, 204);
  EXPECT_EQ(c.Get("/.well-known/ready")->status, 204);
  auto h = c.Get("/health");
  EXPECT_EQ(json::parse(h->body)["items"], 6);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("OmniBind"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto nf = c.Get("/nope");
  EXPECT_EQ(nf->status, 404);
  EXPECT_TRUE(json::parse(nf->body)["error"]["message"].is_string());
}

TEST(Server, ApiKeyGuardsTheApiButNotProbes) {
  serving::ServerOptions o;
  o.api_key = "s3cret";
  ServerFixture f(o);
  expect_error(f.post("/v1/search", R"({"query": {"id": 0}})"), 401, "Authorization");
  expect_error(f.post("/v1/search", R"({"query": {"id": 0}})", {{"Authorization", "Bearer wrong"}}), 401, "Authorization");
  auto r = f.post("/v1/search", R"({"query": {"id": 0}})", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(r.first, 200);
  auto c = f.client();
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/.well-known/live")->status, 204);
  EXPECT_EQ(c.Get("/meta")->status, 401);
}

// Malformed JSON, wrong types, huge arrays, bad base64, deep nesting, random bytes, oversized bodies:
// every one gets a 4xx JSON error and the server keeps answering.
TEST(Server, NeverDiesOnBadInput) {
  serving::ServerOptions o;
  o.max_body_bytes = 1 << 20;
  o.max_items = 64;
  ServerFixture f(o);
  std::vector<std::string> bodies = {
      "", "{", "}", "null", "true", "\"str\"", "[]", "{\"input\":", "{\"query\": null}", "{\"query\": []}",
      "{\"query\": [null]}", "{\"query\": {\"type\": null}}", "{\"query\": {\"type\": \"audio\"}}",
      "{\"query\": {\"type\": \"audio\", \"data\": 5}}", "{\"query\": {\"type\": \"point\", \"data\": \"\"}}",
      "{\"query\": {\"id\": 1.5}}", "{\"query\": {\"id\": 1e300}}", "{\"query\": {\"vector\": [null]}}",
      "{\"input\": {\"type\": \"text\"}}", "{\"input\": [{\"type\": \"text\", \"text\": 5}]}",
      "{\"items\": 5}", "{\"items\": [5]}", "{\"items\": [{}]}", "{\"texts\": {}}", "{\"k\": \"ten\", \"query\": \"x\"}",
      std::string(100, '['), std::string(5000, '{'), "{\"a\":" + std::string(40, '[') + std::string(40, ']') + "}",
      "\xff\xfe\x00\x01", "{\"input\": \"\xff\xfe\"}"};
  std::mt19937 rng(3);
  for (int i = 0; i < 40; ++i) {
    std::string s(std::uniform_int_distribution<int>(1, 300)(rng), ' ');
    for (auto& c : s) c = static_cast<char>(rng());
    bodies.push_back(s);
  }
  // huge arrays: over max_items, and a long vector
  json many = json::array();
  for (int i = 0; i < 65; ++i) many.push_back("x");
  bodies.push_back(json{{"input", many}}.dump());
  bodies.push_back(json{{"query", many}}.dump());
  bodies.push_back(json{{"texts", many}}.dump());
  bodies.push_back(json{{"query", {{"vector", std::vector<float>(100000, 1.f)}}}}.dump());
  for (const char* path : {"/v1/embeddings", "/v1/search", "/v1/items", "/vectorize"}) {
    for (const auto& b : bodies) {
      auto r = f.post(path, b);
      // Valid-by-accident bodies may succeed; everything else is a 4xx JSON error.
      if (r.first == 200) continue;
      EXPECT_GE(r.first, 400) << path << " " << b.substr(0, 60);
      EXPECT_LT(r.first, 500) << path << " " << b.substr(0, 60) << " -> " << r.second.dump();
      ASSERT_TRUE(r.second.is_object() && r.second.contains("error")) << path << " " << b.substr(0, 60);
    }
  }
  // a body over the limit
  auto big = f.post("/v1/search", std::string(2 << 20, ' '));
  EXPECT_EQ(big.first, 413);
  EXPECT_TRUE(big.second.is_object() && big.second.contains("error"));
  auto c = f.client();
  EXPECT_EQ(c.Get("/health")->status, 200);
  auto r = f.post("/v1/search", R"({"query": "dog barking", "k": 1})");
  EXPECT_EQ(r.first, 200);
}

TEST(EmbedBatcher, BatchesConcurrentItemsAndIsolatesBadOnes) {
  testkit::HashExpert::register_once();
  retrieval::ExpertQueryEmbedder emb(experts::create_expert("test-hash", {}));
  serving::EmbedBatcher b(emb, 8, std::chrono::milliseconds(300));
  std::vector<std::future<std::vector<float>>> futs;
  for (int i = 0; i < 16; ++i) futs.push_back(b.submit(experts::Modality::Text, experts::MediaInput::from_text("word" + std::to_string(i))));
  for (int i = 0; i < 16; ++i) {
    auto v = futs[i].get();
    auto direct = emb.embed(experts::Modality::Text, experts::MediaInput::from_text("word" + std::to_string(i)));
    EXPECT_EQ(v, direct);
  }
  EXPECT_LE(b.batches_run(), 4u);  // 16 items, batches of up to 8 gathered within 300 ms
  auto good = b.submit(experts::Modality::Audio, experts::MediaInput::from_bytes("some audio bytes"));
  auto bad = b.submit(experts::Modality::Audio, experts::MediaInput::from_bytes("x"));
  EXPECT_EQ(good.get().size(), 64u);
  EXPECT_THROW(bad.get(), InputError);
}
