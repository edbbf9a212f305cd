// Load test on loopback: a real serving::Server (HTTP thread pool) over a small index, C client
// threads x R requests each (default 8 x 500), a mix of POST /v1/search by vector, by stored id (with
// a modality filter), and GET /v1/items/ID; with --model BUNDLE also text queries through the model.
// Reports p50/p99 latency, throughput and errors (must be 0), and, as the baseline in the same run,
// the same searches called directly on the VectorIndex from C threads (no HTTP). One JSON object.
//   bench_serve_load [--clients 8] [--requests 500] [--n 20000] [--dim 256] [--server-threads 8]
//                    [--model BUNDLE --texts "a dog;rain;..."]
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "omnibind/common/process_memory.h"
#include "omnibind/retrieval/query_embedder.h"
#include "omnibind/retrieval/vector_index.h"
#include "omnibind/serving/server.h"

using namespace omnibind;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<float> unit(std::mt19937& rng, int64_t d) {
  std::normal_distribution<float> g;
  std::vector<float> v(d);
  double s = 0;
  for (auto& x : v) s += double(x = g(rng)) * x;
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

json summary(std::vector<double> lat_ms, double wall_s, int64_t errors) {
  std::sort(lat_ms.begin(), lat_ms.end());
  auto pct = [&](double p) { return lat_ms.empty() ? 0.0 : lat_ms[std::min(lat_ms.size() - 1, size_t(lat_ms.size() * p))]; };
  return {{"requests", lat_ms.size()}, {"errors", errors}, {"p50_ms", pct(0.5)}, {"p99_ms", pct(0.99)},
          {"max_ms", lat_ms.empty() ? 0.0 : lat_ms.back()}, {"throughput_rps", lat_ms.size() / wall_s}, {"wall_s", wall_s}};
}
}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int clients = 8, requests = 500, server_threads = 8;
  int64_t n = 20000, d = 256;
  std::string model, texts_arg = "a dog barking;rain on a roof;a red car;birds singing;a violin";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--clients") clients = std::stoi(v);
    else if (a == "--requests") requests = std::stoi(v);
    else if (a == "--n") n = std::stoll(v);
    else if (a == "--dim") d = std::stoll(v);
    else if (a == "--server-threads") server_threads = std::stoi(v);
    else if (a == "--model") model = v;
    else if (a == "--texts") texts_arg = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::unique_ptr<retrieval::QueryEmbedder> embedder;
  if (!model.empty()) {
    retrieval::EmbedderSpec spec;
    spec.model = model;
    embedder = retrieval::make_query_embedder(spec);
    d = embedder->dim();
  }
  std::vector<std::string> texts;
  std::stringstream ss(texts_arg);
  for (std::string t; std::getline(ss, t, ';');) texts.push_back(t);

  const std::string dir = (fs::temp_directory_path() / ("omnibind_bench_serve_" + std::to_string(::getpid()))).string();
  retrieval::CreateOptions co;
  co.dim = d;
  retrieval::VectorIndex::create(dir, co);
  auto index = retrieval::VectorIndex::open(dir, retrieval::VectorIndex::Mode::ReadWrite);
  std::mt19937 rng(1);
  std::vector<float> rows;
  std::vector<retrieval::ItemRecord> items(n);
  for (int64_t i = 0; i < n; ++i) {
    auto v = unit(rng, d);
    rows.insert(rows.end(), v.begin(), v.end());
    items[i].modality = i % 3 == 0 ? "audio" : i % 3 == 1 ? "image" : "point";
    items[i].source = "item" + std::to_string(i);
  }
  index->add(items, rows.data(), n, false);

  serving::ServerOptions so;
  so.port = 0;
  so.threads = server_threads;
  serving::Server server(*index, embedder.get(), so);
  const int port = server.bind();
  std::thread srv([&] { server.run(); });
  {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 500 && !c.Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // The request mix, decided up front per (client, request) so both runs see the same work.
  auto body_for = [&](std::mt19937& r, int kind, std::string& path) -> std::string {
    const int64_t id = std::uniform_int_distribution<int64_t>(0, n - 1)(r);
    if (kind == 0) {
      path = "/v1/search";
      return json{{"query", json{{"vector", unit(r, d)}}}, {"k", 10}}.dump();
    }
    if (kind == 1) {
      path = "/v1/search";
      return json{{"query", json{{"id", id}}}, {"k", 10}, {"modality", "audio"}}.dump();
    }
    if (kind == 2) {
      path = "/v1/items/" + std::to_string(id);
      return "";
    }
    path = "/v1/search";
    return json{{"query", json{{"text", texts[id % texts.size()]}}}, {"k", 10}}.dump();
  };
  const int kinds = embedder ? 4 : 3;

  std::vector<std::vector<double>> lat(clients);
  std::atomic<int64_t> errors{0};
  auto t0 = Clock::now();
  std::vector<std::thread> cs;
  for (int c = 0; c < clients; ++c)
    cs.emplace_back([&, c] {
      std::mt19937 r(100 + c);
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(60, 0);
      cli.set_keep_alive(true);
      for (int i = 0; i < requests; ++i) {
        std::string path;
        std::string body = body_for(r, (c + i) % kinds, path);
        auto t = Clock::now();
        auto res = body.empty() ? cli.Get(path.c_str()) : cli.Post(path.c_str(), body, "application/json");
        lat[c].push_back(since(t) * 1e3);
        if (!res || res->status != 200) ++errors;
      }
    });
  for (auto& t : cs) t.join();
  const double wall = since(t0);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  json out = {{"clients", clients}, {"requests_per_client", requests}, {"items", n}, {"dim", d},
              {"server_threads", server_threads}, {"hardware_threads", std::thread::hardware_concurrency()},
              {"model", model.empty() ? "none (vector/id/item requests)" : model}};
  out["http"] = summary(all, wall, errors);
  server.stop();
  srv.join();

  // Baseline: the same number of searches, in-process, no HTTP.
  std::vector<std::vector<double>> blat(clients);
  t0 = Clock::now();
  cs.clear();
  for (int c = 0; c < clients; ++c)
    cs.emplace_back([&, c] {
      std::mt19937 r(100 + c);
      for (int i = 0; i < requests; ++i) {
        auto q = unit(r, d);
        auto t = Clock::now();
        index->search(q.data(), 10);
        blat[c].push_back(since(t) * 1e3);
      }
    });
  for (auto& t : cs) t.join();
  const double bwall = since(t0);
  all.clear();
  for (auto& l : blat) all.insert(all.end(), l.begin(), l.end());
  out["direct_vector_search_baseline"] = summary(all, bwall, 0);
  index.reset();
  fs::remove_all(dir);
  std::printf("%s\n", out.dump(2).c_str());
  return errors == 0 ? 0 : 1;
}
