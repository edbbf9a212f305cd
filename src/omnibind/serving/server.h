// The HTTP server over one index and (optionally) one query embedder:
//   POST /v1/embeddings   OpenAI-compatible (text; extended with media items and {"compose": [...]} inputs)
//   POST /v1/search       text/media/id/vector queries, composition (query/add/sub, {"compose"}), filters
//   POST /v1/locate       where in a picture a (composed) query is: heatmap grid + boxes (a bundle's image
//                         pathway; the picture's region embeddings are cached by content)
//   POST /v1/items        add items (vectors, or media/text through the model); DELETE/GET /v1/items/ID
//   GET  /v1/items/ID/media  the item's source file (only under --allow-paths), for previews
//   GET  /v1/info         index info
//   POST /vectorize, GET /meta, /.well-known/live|ready   Weaviate multi2vec-bind compatible
//   GET  /health, GET /   status and the web page
// Every error is 4xx/5xx {"error": {"message", "field"}}; no request can take the server down.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/retrieval/query_embedder.h"
#include "omnibind/retrieval/vector_index.h"

namespace httplib {
class Server;
}

namespace omnibind::serving {

class EmbedBatcher;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0 = any free port (see Server::port())
  std::string api_key;                   // empty = no auth; else "Authorization: Bearer KEY"
  size_t max_body_bytes = 64u << 20;
  double timeout_s = 60;                 // per request (embedding waits, socket reads/writes)
  size_t max_items = 256;                // items per request
  int64_t max_k = 1000;
  int threads = 8;                       // HTTP worker threads
  int max_batch = 16;                    // model batching
  int batch_wait_us = 2000;
  std::vector<std::string> allow_paths;  // server-side media paths and previews
  std::string web_dir;                   // serve the page from here instead of the embedded copy
  size_t locate_cache = 8;               // pictures whose region embeddings /v1/locate keeps (0 = none)
};

class Server {
 public:
  // `embedder` may be null (then media/text requests answer 503). Both must outlive the server.
  Server(retrieval::VectorIndex& index, const retrieval::QueryEmbedder* embedder, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int bind();   // binds host:port; returns the port. InputError when it cannot.
  void run();   // serves until stop(); call bind() first
  void stop();
  int port() const { return port_; }

 private:
  void routes();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The embedded single-page web UI (HTML with inline JS/CSS).
const std::string& web_page();

}  // namespace omnibind::serving
