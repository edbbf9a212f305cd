// An in-process server over a small index of texts embedded by the test hashing expert.
#pragma once
#include <httplib.h>

#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "../retrieval/hash_expert.h"
#include "omnibind/serving/server.h"
#include "testing/test_support.h"

namespace omnibind::testkit {

inline const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = {"a dog barking loudly", "rain falling on a roof", "a cat meowing softly",
                                                 "dog playing in the rain", "a red car engine starting", "birds singing at dawn"};
  return texts;
}

struct ServerFixture {
  std::string dir;
  std::unique_ptr<retrieval::VectorIndex> index;
  std::unique_ptr<retrieval::QueryEmbedder> embedder;
  std::unique_ptr<serving::Server> server;
  std::thread thread;
  int port = 0;

  explicit ServerFixture(serving::ServerOptions opt = {}, bool with_model = true) {
    HashExpert::register_once();
    dir = make_temp_dir("srv") + "/index";
    retrieval::CreateOptions co;
    co.dim = HashExpert::kDim;
    retrieval::VectorIndex::create(dir, co);
    index = retrieval::VectorIndex::open(dir, retrieval::VectorIndex::Mode::ReadWrite);
    auto emb = std::make_unique<retrieval::ExpertQueryEmbedder>(experts::create_expert("test-hash", {}));
    std::vector<float> rows;
    std::vector<retrieval::ItemRecord> recs;
    for (size_t i = 0; i < corpus().size(); ++i) {
      auto v = emb->embed(experts::Modality::Text, experts::MediaInput::from_text(corpus()[i]));
      rows.insert(rows.end(), v.begin(), v.end());
      retrieval::ItemRecord r;
      r.modality = i % 2 ? "audio" : "text";
      r.source = corpus()[i];
      r.labels = {i % 2 ? "odd" : "even"};
      r.metadata = nlohmann::json{{"n", i}, {"kind", i < 3 ? "first" : "second"}}.dump();
      recs.push_back(r);
    }
    index->add(recs, rows.data(), static_cast<int64_t>(recs.size()));
    if (with_model) embedder = std::move(emb);
    opt.port = 0;
    server = std::make_unique<serving::Server>(*index, embedder.get(), opt);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 200 && !c.Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~ServerFixture() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  // POST JSON text; returns (status, parsed body or null when not JSON).
  std::pair<int, nlohmann::json> post(const std::string& path, const std::string& body,
                                      const httplib::Headers& headers = {}) const {
    auto c = client();
    auto res = c.Post(path.c_str(), headers, body, "application/json");
    if (!res) return {-1, nullptr};
    return {res->status, nlohmann::json::parse(res->body, nullptr, false)};
  }
};

}  // namespace omnibind::testkit
