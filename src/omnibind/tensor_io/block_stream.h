// Streams a model that is bigger than memory through it, one block of tensors at a time: the
// tensors stay in a read-only mapped checkpoint (load_checkpoint's zero-copy views), a worker
// thread pages the next block(s) in while the caller computes the current one, and the caller
// releases a block's pages once it is done with it, so neither the process (RSS) nor the page cache
// piles up. Generic: a block is any named set of tensors (a transformer layer "visual.blocks.7."),
// from any file format whose tensors are mapped (safetensors, torch.save zip stored entries), over
// one or several files (shards).
//
//   BlockStream s(blocks, {.read_ahead = 1});
//   for (size_t i = 0; i < s.size(); ++i) {
//     const StateDict& w = s.wait(i);      // pages of block i are in; block i+1.. are being read
//     { Layer l = Layer::load(WeightSource(w, compute, family)); x = l.forward(x); }  // drop views
//     s.release(i);                        // madvise(DONTNEED) + posix_fadvise(DONTNEED)
//   }
//
// Where the bytes are: every tensor's byte range is looked up in /proc/self/maps at construction
// (file, offset in the file); ranges that are not file-backed (a decompressed zip entry, a tensor
// made in memory) are "resident": never fetched or released, counted in resident_bytes.
//
// Paging in: madvise(MADV_WILLNEED) on the range, then MADV_POPULATE_READ (Linux >= 5.14; older
// kernels: one read per page), on the worker. The file size is checked first (fstat) so a shard
// truncated after it was opened is an InputError naming it, not a SIGBUS.
// Releasing: madvise(MADV_DONTNEED) on the whole pages inside the block's ranges (the process's
// page-table entries go; RSS drops), then posix_fadvise(POSIX_FADV_DONTNEED) on the same file range
// (clean page-cache pages go unless another process maps them). Tensors that still view released
// memory stay valid: touching them pages the bytes in again (slowly), so drop views first.
//
// Memory budget: the stream holds at most 1 + read_ahead blocks of file pages at a time; when that
// is more than the budget (options.memory_budget, default: MemAvailable from /proc/meminfo), the
// constructor throws a one-line InputError naming the sizes (lower the read-ahead or free memory).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

struct StreamedBlock {
  std::string name;   // for messages and stats ("visual.blocks.7")
  StateDict tensors;  // views into mapped file(s), names as the caller wants them
};

// Blocks named "<prefix><i>." for i in [0, count): each gets the tensors of `dict` under that
// prefix, with their full names. InputError naming the prefix when a block has no tensor.
std::vector<StreamedBlock> blocks_by_prefix(const StateDict& dict, const std::string& prefix, int64_t count);
// One block per prefix (each ending in '.', e.g. "vision_model.encoder.layers.3."): the tensors
// whose names start with it, full names kept; the block is named after the prefix without the dot.
// InputError naming the prefix when a block has no tensor.
std::vector<StreamedBlock> blocks_by_prefixes(const StateDict& dict, const std::vector<std::string>& prefixes);

struct BlockStreamOptions {
  int64_t read_ahead = 1;        // blocks paged in ahead of the one waited for (0: none, sync reads)
  bool release = true;           // release(i) drops pages; false: release() only counts
  uint64_t memory_budget = 0;    // bytes of file pages the stream may hold; 0: MemAvailable
  std::string what = "streamed weights";  // subject of error messages ("EVA-CLIP-18B vision")
};

struct BlockStreamStats {
  uint64_t streamed_bytes = 0;    // file-backed bytes of all blocks (one pass)
  uint64_t resident_bytes = 0;    // bytes of tensors that are not file-backed (never streamed)
  uint64_t largest_block_bytes = 0;
  uint64_t fetched_bytes = 0;     // file-backed bytes paged in so far (all fetches)
  uint64_t released_bytes = 0;    // bytes whose pages were dropped so far
  uint64_t blocks_fetched = 0;
  double fetch_seconds = 0;       // worker time spent paging in (disk + page faults)
  double wait_seconds = 0;        // caller time blocked in wait() (the share not hidden by compute)
  double release_seconds = 0;     // caller time in release()
  bool populate_read = false;     // MADV_POPULATE_READ was used (else page touching)
};

class BlockStream {
 public:
  explicit BlockStream(std::vector<StreamedBlock> blocks, BlockStreamOptions options = {});
  ~BlockStream();  // stops the worker (waits for the block it is reading)
  BlockStream(const BlockStream&) = delete;
  BlockStream& operator=(const BlockStream&) = delete;

  size_t size() const;
  const std::string& name(size_t i) const;
  uint64_t block_bytes(size_t i) const;  // file-backed bytes of block i

  // Queues block i on the worker (no-op when queued, in memory, or i >= size()).
  void prefetch(size_t i);
  // Blocks until block i's pages are in (queueing it, and read_ahead blocks after it, first);
  // the time blocked is added to wait_seconds. Rethrows the worker's error (InputError naming the
  // file for a truncated shard). The StateDict lives as long as the stream.
  const StateDict& wait(size_t i);
  // Drops block i's pages (see above), also of a block never waited for (a read-ahead block not
  // used, pages someone else touched); released_bytes counts blocks that were paged in. Call after
  // the last use of its tensors.
  void release(size_t i);

  BlockStreamStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// MemAvailable of /proc/meminfo in bytes (0 when unreadable).
uint64_t memory_available_bytes();

}  // namespace omnibind::tensor_io
