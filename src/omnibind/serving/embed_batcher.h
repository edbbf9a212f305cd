// Request batching for the model: concurrent HTTP requests submit single items; a worker thread
// gathers items of one modality for up to `wait` (or `max_batch` items) and embeds them in one
// embed_batch call. A failing batch is retried item by item so one bad file fails only its request.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "omnibind/retrieval/query_embedder.h"

namespace omnibind::serving {

class EmbedBatcher {
 public:
  EmbedBatcher(const retrieval::QueryEmbedder& embedder, int max_batch, std::chrono::microseconds wait, int workers = 1);
  ~EmbedBatcher();
  EmbedBatcher(const EmbedBatcher&) = delete;
  EmbedBatcher& operator=(const EmbedBatcher&) = delete;

  std::future<std::vector<float>> submit(retrieval::Modality m, retrieval::MediaInput input);
  const retrieval::QueryEmbedder& embedder() const { return embedder_; }
  uint64_t batches_run() const { return batches_.load(); }

 private:
  struct Job {
    retrieval::Modality modality;
    retrieval::MediaInput input;
    std::promise<std::vector<float>> promise;
  };
  void work();

  const retrieval::QueryEmbedder& embedder_;
  const int max_batch_;
  const std::chrono::microseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> batches_{0};
  std::vector<std::thread> threads_;
};

}  // namespace omnibind::serving
