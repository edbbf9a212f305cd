// The server's cache of images' region embeddings (retrieval::RegionEmbeddings), so that several
// /v1/locate queries on one picture cost one pass over its regions. Keyed by the image's content
// (a hash of its bytes, plus the region grid); least recently used entries are dropped past
// `capacity`. Concurrent requests for the same key wait for one computation instead of each running
// their own; a failed computation is not cached (every waiter sees its exception).
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "omnibind/retrieval/localisation.h"

namespace omnibind::serving {

// "<size>-<hash1>-<hash2>" (two 64-bit FNV-1a variants over the bytes): equal bytes, equal key.
std::string content_key(std::string_view bytes);

class RegionCache {
 public:
  using Entry = std::shared_ptr<const retrieval::RegionEmbeddings>;
  explicit RegionCache(size_t capacity) : capacity_(capacity) {}

  // The cached entry for `key`, or compute() run once (by the first caller; the others wait).
  // `hit` tells whether this call found it ready or in flight. capacity 0 = never keep anything.
  Entry get(const std::string& key, const std::function<retrieval::RegionEmbeddings()>& compute, bool* hit = nullptr);
  size_t size() const;
  uint64_t computed() const;  // how many times compute() ran

 private:
  using Future = std::shared_future<Entry>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::string> order_;  // most recent first
  struct Slot {
    Future future;
    std::list<std::string>::iterator pos;
    uint64_t generation = 0;  // which computation filled it
  };
  std::map<std::string, Slot> entries_;
  uint64_t computed_ = 0;
};

}  // namespace omnibind::serving
