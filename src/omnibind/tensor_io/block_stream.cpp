#include "omnibind/tensor_io/block_stream.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>

#include "omnibind/common/error.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace omnibind::tensor_io {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string gb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(bytes) / 1e9);
  return buf;
}

uintptr_t page_size() {
  static const uintptr_t p = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return p;
}

// One file-backed mapping of /proc/self/maps.
struct MapEntry {
  uintptr_t start = 0, end = 0;
  uint64_t offset = 0;
  unsigned major = 0, minor = 0;
  uint64_t inode = 0;
  std::string path;
};

std::vector<MapEntry> file_mappings() {
  std::vector<MapEntry> out;
  std::ifstream f("/proc/self/maps");
  for (std::string line; std::getline(f, line);) {
    MapEntry e;
    unsigned long start = 0, end = 0, off = 0, inode = 0;
    char perms[8] = {0};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %x:%x %lu %n", &start, &end, perms, &off, &e.major, &e.minor,
                    &inode, &consumed) < 7)
      continue;
    if (inode == 0) continue;
    e.start = start;
    e.end = end;
    e.offset = off;
    e.inode = inode;
    e.path = consumed > 0 && static_cast<size_t>(consumed) <= line.size() ? line.substr(consumed) : "";
    if (e.path.empty() || e.path[0] != '/') continue;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const MapEntry& a, const MapEntry& b) { return a.start < b.start; });
  return out;
}

// Bytes a tensor's elements span, from its first element.
uint64_t extent_bytes(const RawTensor& t) {
  if (t.numel() == 0) return 0;
  const auto strides = t.strides.empty() ? t.contiguous_strides() : t.strides;
  int64_t last = 0;
  for (size_t d = 0; d < t.shape.size(); ++d) last += (t.shape[d] - 1) * strides[d];
  return static_cast<uint64_t>(last + 1) * dtype_size(t.dtype);
}

struct Range {
  size_t file = 0;
  uint64_t offset = 0, length = 0;
  const std::byte* addr = nullptr;
};

struct File {
  std::string path;
  int fd = -1;  // -1: could not reopen (deleted/replaced): no size check, no fadvise
};

enum class State { Idle, Queued, Loading, Ready, Failed };

struct BlockInfo {
  std::vector<Range> ranges;
  uint64_t bytes = 0, resident = 0;
  State state = State::Idle;
  std::exception_ptr error;
};

}  // namespace

struct BlockStream::Impl {
  std::vector<StreamedBlock> blocks;
  BlockStreamOptions options;
  std::vector<File> files;
  std::vector<BlockInfo> info;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> queue;
  bool stop = false;
  BlockStreamStats stats;
  std::thread worker;
  std::atomic<unsigned> touched_{0};

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
    for (auto& f : files)
      if (f.fd >= 0) ::close(f.fd);
  }

  void locate(const std::vector<MapEntry>& maps, std::map<std::tuple<unsigned, unsigned, uint64_t>, size_t>& file_ids,
              BlockInfo& b, const std::byte* addr, uint64_t n) {
    while (n > 0) {
      const uintptr_t p = reinterpret_cast<uintptr_t>(addr);
      auto it = std::upper_bound(maps.begin(), maps.end(), p, [](uintptr_t v, const MapEntry& e) { return v < e.start; });
      if (it == maps.begin() || (--it, p >= it->end)) {  // not file-backed: resident memory
        b.resident += n;
        return;
      }
      const uint64_t take = std::min<uint64_t>(n, it->end - p);
      const auto key = std::make_tuple(it->major, it->minor, it->inode);
      auto fid = file_ids.find(key);
      if (fid == file_ids.end()) {
        File f{it->path, ::open(it->path.c_str(), O_RDONLY | O_CLOEXEC)};
        struct stat st {};
        if (f.fd >= 0 && (::fstat(f.fd, &st) != 0 || st.st_ino != it->inode ||
                          st.st_dev != makedev(it->major, it->minor))) {
          ::close(f.fd);
          f.fd = -1;
        }
        files.push_back(std::move(f));
        fid = file_ids.emplace(key, files.size() - 1).first;
      }
      b.ranges.push_back({fid->second, it->offset + (p - it->start), take, addr});
      b.bytes += take;
      addr += take;
      n -= take;
    }
  }

  // Sorted by file and offset, overlapping/adjacent ranges merged (a storage shared by views).
  static void merge(BlockInfo& b) {
    auto& r = b.ranges;
    std::sort(r.begin(), r.end(), [](const Range& x, const Range& y) {
      return std::tie(x.file, x.offset) < std::tie(y.file, y.offset);
    });
    std::vector<Range> out;
    for (const auto& x : r) {
      if (!out.empty() && out.back().file == x.file && x.offset <= out.back().offset + out.back().length &&
          x.addr - out.back().addr == static_cast<std::ptrdiff_t>(x.offset - out.back().offset)) {
        const uint64_t end = std::max(out.back().offset + out.back().length, x.offset + x.length);
        out.back().length = end - out.back().offset;
      } else {
        out.push_back(x);
      }
    }
    r = std::move(out);
    b.bytes = 0;
    for (const auto& x : r) b.bytes += x.length;
  }

  // Worker: pages block i in. Throws InputError for a file shorter than its ranges.
  bool fetch(size_t i) {
    const auto& b = info[i];
    bool populate = true;
    for (const auto& r : b.ranges) {
      const File& f = files[r.file];
      if (f.fd >= 0) {
        struct stat st {};
        if (::fstat(f.fd, &st) == 0 && static_cast<uint64_t>(st.st_size) < r.offset + r.length)
          throw InputError(f.path + ": truncated (" + std::to_string(st.st_size) + " bytes; " + blocks[i].name +
                           " of " + options.what + " needs bytes up to " + std::to_string(r.offset + r.length) +
                           "): a shard cut short or rewritten while in use");
      }
      const uintptr_t ps = page_size();
      const uintptr_t s = reinterpret_cast<uintptr_t>(r.addr) & ~(ps - 1);
      const uintptr_t e = (reinterpret_cast<uintptr_t>(r.addr) + r.length + ps - 1) & ~(ps - 1);
      void* start = reinterpret_cast<void*>(s);
      ::madvise(start, e - s, MADV_WILLNEED);
      if (::madvise(start, e - s, MADV_POPULATE_READ) != 0) {
        if (errno == EFAULT)
          throw InputError(f.path + ": cannot read " + blocks[i].name + " of " + options.what +
                           " (file truncated while mapped?)");
        populate = false;  // EINVAL: kernel without MADV_POPULATE_READ -> touch every page
        unsigned char acc = 0;
        for (uintptr_t p = s; p < e; p += ps) acc = static_cast<unsigned char>(acc ^ *reinterpret_cast<const volatile unsigned char*>(p));
        touched_.fetch_xor(acc, std::memory_order_relaxed);  // keeps the reads
      }
    }
    return populate;
  }

  void run() {
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (stop) return;
        i = queue.front();
        queue.pop_front();
        info[i].state = State::Loading;
      }
      const auto t0 = Clock::now();
      std::exception_ptr error;
      bool populate = false;
      try {
        populate = fetch(i);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        stats.fetch_seconds += seconds_since(t0);
        if (error) {
          info[i].state = State::Failed;
          info[i].error = error;
        } else {
          info[i].state = State::Ready;
          stats.fetched_bytes += info[i].bytes;
          stats.blocks_fetched += 1;
          stats.populate_read = populate;
        }
      }
      cv.notify_all();
    }
  }

  // Under mu.
  void enqueue(size_t i, bool front) {
    if (i >= info.size() || info[i].state != State::Idle) return;
    info[i].state = State::Queued;
    if (front) queue.push_front(i);
    else queue.push_back(i);
  }
};

std::vector<StreamedBlock> blocks_by_prefix(const StateDict& dict, const std::string& prefix, int64_t count) {
  std::vector<StreamedBlock> out(static_cast<size_t>(std::max<int64_t>(count, 0)));
  for (int64_t i = 0; i < count; ++i) {
    out[i].name = prefix + std::to_string(i);
    out[i].tensors = StateDict(dict.source());
  }
  for (const auto& name : dict.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dot = name.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size()) continue;
    const std::string idx = name.substr(prefix.size(), dot - prefix.size());
    if (idx.find_first_not_of("0123456789") != std::string::npos) continue;
    const long long k = std::stoll(idx);
    if (k < count) out[static_cast<size_t>(k)].tensors.add(name, dict.at(name));
  }
  for (const auto& b : out)
    if (b.tensors.empty()) throw InputError(dict.source() + ": no tensor under '" + b.name + ".' (not the expected model?)");
  return out;
}

std::vector<StreamedBlock> blocks_by_prefixes(const StateDict& dict, const std::vector<std::string>& prefixes) {
  std::vector<StreamedBlock> out(prefixes.size());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    const std::string& p = prefixes[i];
    out[i].name = !p.empty() && p.back() == '.' ? p.substr(0, p.size() - 1) : p;
    out[i].tensors = StateDict(dict.source());
    index[p] = i;
  }
  for (const auto& name : dict.names()) {
    // The longest prefix that matches ("x.1." and "x.10." never both match: both end in '.').
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
      auto it = index.find(name.substr(0, dot + 1));
      if (it != index.end()) {
        out[it->second].tensors.add(name, dict.at(name));
        break;
      }
    }
  }
  for (const auto& b : out)
    if (b.tensors.empty()) throw InputError(dict.source() + ": no tensor under '" + b.name + ".' (not the expected model?)");
  return out;
}

uint64_t memory_available_bytes() {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("MemAvailable:", 0) == 0) return std::stoull(line.substr(13)) * 1024;
  return 0;
}

BlockStream::BlockStream(std::vector<StreamedBlock> blocks, BlockStreamOptions options) : impl_(new Impl) {
  Impl& m = *impl_;
  require(options.read_ahead >= 0, options.what + ": read-ahead must be >= 0 blocks");
  m.blocks = std::move(blocks);
  m.options = std::move(options);
  m.info.resize(m.blocks.size());
  const auto maps = file_mappings();
  std::map<std::tuple<unsigned, unsigned, uint64_t>, size_t> file_ids;
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    auto& b = m.info[i];
    const auto& dict = m.blocks[i].tensors;
    for (const auto& name : dict.names()) {
      const RawTensor& t = dict.at(name);
      m.locate(maps, file_ids, b, t.data + t.storage_offset * static_cast<int64_t>(dtype_size(t.dtype)),
               extent_bytes(t));
    }
    Impl::merge(b);
    m.stats.streamed_bytes += b.bytes;
    m.stats.resident_bytes += b.resident;
    m.stats.largest_block_bytes = std::max(m.stats.largest_block_bytes, b.bytes);
  }
  const uint64_t ra = static_cast<uint64_t>(m.options.read_ahead);
  const uint64_t need = (1 + ra) * m.stats.largest_block_bytes;
  const uint64_t budget = m.options.memory_budget ? m.options.memory_budget : memory_available_bytes();
  if (budget > 0 && need > budget)
    throw InputError(m.options.what + ": streaming needs " + gb(need) + " GB for the block in use plus a read-ahead of " +
                     std::to_string(ra) + " block(s) (largest block " + gb(m.stats.largest_block_bytes) +
                     " GB) but only " + gb(budget) + " GB " +
                     (m.options.memory_budget ? "are allowed" : "of memory are available") +
                     (ra > 0 ? ": lower the read-ahead" : ": too small to stream this model"));
  m.worker = std::thread([&m] { m.run(); });
}

BlockStream::~BlockStream() = default;

size_t BlockStream::size() const { return impl_->blocks.size(); }
const std::string& BlockStream::name(size_t i) const { return impl_->blocks.at(i).name; }
uint64_t BlockStream::block_bytes(size_t i) const { return impl_->info.at(i).bytes; }

void BlockStream::prefetch(size_t i) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->enqueue(i, false);
  }
  impl_->cv.notify_all();
}

const StateDict& BlockStream::wait(size_t i) {
  Impl& m = *impl_;
  require(i < m.blocks.size(), m.options.what + ": block " + std::to_string(i) + " out of range");
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(m.mu);
  m.enqueue(i, true);
  for (int64_t k = 1; k <= m.options.read_ahead; ++k) m.enqueue(i + static_cast<size_t>(k), false);
  m.cv.notify_all();
  m.cv.wait(lock, [&] { return m.info[i].state == State::Ready || m.info[i].state == State::Failed; });
  m.stats.wait_seconds += seconds_since(t0);
  if (m.info[i].state == State::Failed) {
    auto e = m.info[i].error;
    m.info[i].state = State::Idle;  // a later wait() tries again
    m.info[i].error = nullptr;
    std::rethrow_exception(e);
  }
  return m.blocks[i].tensors;
}

void BlockStream::release(size_t i) {
  Impl& m = *impl_;
  require(i < m.blocks.size(), m.options.what + ": block " + std::to_string(i) + " out of range");
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(m.mu);
  m.cv.wait(lock, [&] { return m.info[i].state != State::Loading; });
  auto& b = m.info[i];
  if (b.state == State::Queued) m.queue.erase(std::remove(m.queue.begin(), m.queue.end(), i), m.queue.end());
  const bool was_in = b.state == State::Ready;
  b.state = State::Idle;
  if (m.options.release) {
    const uintptr_t ps = page_size();
    for (const auto& r : b.ranges) {
      // Whole pages inside the range only: a page shared with the neighbouring block stays.
      const uintptr_t s = (reinterpret_cast<uintptr_t>(r.addr) + ps - 1) & ~(ps - 1);
      const uintptr_t e = (reinterpret_cast<uintptr_t>(r.addr) + r.length) & ~(ps - 1);
      if (e > s) ::madvise(reinterpret_cast<void*>(s), e - s, MADV_DONTNEED);
      const File& f = m.files[r.file];
      if (f.fd >= 0)
        ::posix_fadvise(f.fd, static_cast<off_t>(r.offset), static_cast<off_t>(r.length), POSIX_FADV_DONTNEED);
    }
    if (was_in) m.stats.released_bytes += b.bytes;
  }
  m.stats.release_seconds += seconds_since(t0);
}

BlockStreamStats BlockStream::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace omnibind::tensor_io
