#include "omnibind/serving/embed_batcher.h"

namespace omnibind::serving {

EmbedBatcher::EmbedBatcher(const retrieval::QueryEmbedder& embedder, int max_batch, std::chrono::microseconds wait,
                           int workers)
    : embedder_(embedder), max_batch_(std::max(1, max_batch)), wait_(wait) {
  for (int i = 0; i < std::max(1, workers); ++i) threads_.emplace_back([this] { work(); });
}

EmbedBatcher::~EmbedBatcher() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::future<std::vector<float>> EmbedBatcher::submit(retrieval::Modality m, retrieval::MediaInput input) {
  auto job = std::make_shared<Job>();
  job->modality = m;
  job->input = std::move(input);
  auto fut = job->promise.get_future();
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return fut;
}

void EmbedBatcher::work() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      // Give concurrent requests a moment to join this batch.
      if (static_cast<int>(queue_.size()) < max_batch_ && wait_.count() > 0)
        cv_.wait_for(lk, wait_, [&] { return stop_ || static_cast<int>(queue_.size()) >= max_batch_; });
      if (queue_.empty()) continue;
      const auto m = queue_.front()->modality;
      for (auto it = queue_.begin(); it != queue_.end() && static_cast<int>(batch.size()) < max_batch_;) {
        if ((*it)->modality == m) {
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::vector<retrieval::MediaInput> inputs;
    for (auto& j : batch) inputs.push_back(j->input);
    std::vector<std::vector<float>> out;
    bool ok = false;
    try {
      out = embedder_.embed_batch(batch[0]->modality, inputs);
      ok = out.size() == batch.size();
    } catch (...) {
      ok = false;
    }
    if (ok) {
      for (size_t i = 0; i < batch.size(); ++i) batch[i]->promise.set_value(std::move(out[i]));
      ++batches_;
      continue;
    }
    // One at a time, so that each request gets its own error (or its result).
    for (auto& j : batch) {
      try {
        j->promise.set_value(embedder_.embed(j->modality, j->input));
      } catch (...) {
        j->promise.set_exception(std::current_exception());
      }
    }
  }
}

}  // namespace omnibind::serving
