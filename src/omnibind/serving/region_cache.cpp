#include "omnibind/serving/region_cache.h"

#include <cstdio>

namespace omnibind::serving {

std::string content_key(std::string_view bytes) {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char c : bytes) {
    a = (a ^ c) * 0x100000001b3ull;  // FNV-1a
    b = (b * 0x100000001b3ull) ^ c;  // FNV-1, another seed
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu-%016llx-%016llx", bytes.size(), static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

RegionCache::Entry RegionCache::get(const std::string& key, const std::function<retrieval::RegionEmbeddings()>& compute,
                                    bool* hit) {
  std::promise<Entry> promise;
  Future fut;
  bool mine = false;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      order_.splice(order_.begin(), order_, it->second.pos);
      fut = it->second.future;
    } else {
      mine = true;
      generation = ++computed_;
      fut = promise.get_future().share();
      if (capacity_ > 0) {
        order_.push_front(key);
        entries_[key] = Slot{fut, order_.begin(), generation};
        while (entries_.size() > capacity_) {
          entries_.erase(order_.back());
          order_.pop_back();
        }
      }
    }
  }
  if (hit) *hit = !mine;
  if (mine) {
    try {
      promise.set_value(std::make_shared<const retrieval::RegionEmbeddings>(compute()));
    } catch (...) {
      {
        // A failure is not cached: the next request computes again.
        std::lock_guard<std::mutex> lock(mu_);
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second.generation == generation) {
          order_.erase(it->second.pos);
          entries_.erase(it);
        }
      }
      promise.set_exception(std::current_exception());
    }
  }
  return fut.get();
}

size_t RegionCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

uint64_t RegionCache::computed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return computed_;
}

}  // namespace omnibind::serving
