// omnibind serve --index DIR: the HTTP API (OpenAI-style embeddings, search, Weaviate multi2vec-bind
// /vectorize) and the web page, on loopback by default.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <unistd.h>

#include <atomic>

#include "omnibind/cli/embedder_options.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/serving/server.h"

namespace omnibind::cli {
namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

VerbRun setup(CLI::App& sub) {
  struct Opts {
    std::string index;
    double max_body_mb = 64;
    retrieval::EmbedderSpec model;
    serving::ServerOptions server;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("--index", o->index, "Index directory (omnibind index create)")->required();
  add_embedder_options(sub, o->model);
  sub.add_option("--host", o->server.host, "Address to listen on (default 127.0.0.1: loopback only)");
  sub.add_option("--port", o->server.port, "Port (default 8080; 0 = any free port)");
  sub.add_option("--api-key", o->server.api_key, "Require Authorization: Bearer KEY (default: env OMNIBIND_API_KEY)");
  sub.add_option("--threads", o->server.threads, "HTTP worker threads (default 8)");
  sub.add_option("--max-body-mb", o->max_body_mb, "Largest request body in MiB (default 64)");
  sub.add_option("--timeout-s", o->server.timeout_s, "Per-request time limit in seconds (default 60)");
  sub.add_option("--max-items", o->server.max_items, "Most items per request (default 256)");
  sub.add_option("--max-batch", o->server.max_batch, "Most items the model embeds in one batch (default 16)");
  sub.add_option("--allow-paths", o->server.allow_paths, "Directories whose files requests may name by path, and previews may serve");
  sub.add_option("--web-dir", o->server.web_dir, "Serve index.html from this folder instead of the built-in page");
  sub.add_option("--locate-cache", o->server.locate_cache,
                 "Pictures whose region embeddings POST /v1/locate keeps, so more queries on one picture are cheap (default 8)");

  return [o]() -> int {
    auto& s = o->server;
    require(s.port >= 0 && s.port <= 65535, "--port must be in 0..65535");
    require(s.threads >= 1 && s.threads <= 1024, "--threads must be in 1..1024");
    require(o->max_body_mb > 0 && o->max_body_mb <= 4096, "--max-body-mb must be in (0, 4096]");
    require(s.timeout_s > 0, "--timeout-s must be > 0");
    require(s.max_items >= 1, "--max-items must be >= 1");
    require(s.locate_cache <= 4096, "--locate-cache must be in 0..4096");
    s.max_body_bytes = static_cast<size_t>(o->max_body_mb * 1024 * 1024);
    if (s.api_key.empty())
      if (const char* k = std::getenv("OMNIBIND_API_KEY")) s.api_key = k;
    // SIGINT/SIGTERM set a flag (all a handler may do); a watcher thread sees it and stops the server.
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop_requested = 1; };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    auto index = retrieval::VectorIndex::open(o->index, retrieval::VectorIndex::Mode::ReadWrite);
    std::unique_ptr<retrieval::QueryEmbedder> embedder;
    if (!o->model.empty()) embedder = retrieval::make_query_embedder(o->model);
    if (embedder && embedder->dim() != index->dim())
      throw InputError("the model embeds into " + std::to_string(embedder->dim()) + " dims, the index " + o->index +
                       " has " + std::to_string(index->dim()));

    serving::Server server(*index, embedder.get(), s);
    int port = server.bind();
    bool loopback = s.host == "127.0.0.1" || s.host == "localhost" || s.host == "::1";
    if (!loopback && s.api_key.empty())
      std::fprintf(stderr, "omnibind serve: warning: listening on %s without an API key\n", s.host.c_str());
    std::printf("omnibind serve: http://%s:%d/ (%lld items, dim %lld%s)\n", s.host.c_str(), port,
                static_cast<long long>(index->size()), static_cast<long long>(index->dim()),
                embedder ? (", model " + embedder->name()).c_str() : ", no model");
    std::fflush(stdout);
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done && !g_stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      server.stop();
    });
    server.run();
    done = true;
    watcher.join();
    return 0;
  };
}

}  // namespace

REGISTER_VERB("serve", "Serve an index over HTTP: embeddings, search, Weaviate /vectorize, a web page", setup);

}  // namespace omnibind::cli
