// Several processes, torchrun-style (docs/SCALING.md): who am I (RANK, WORLD_SIZE, LOCAL_RANK), where
// is the rendezvous (MASTER_ADDR:MASTER_PORT), and the collectives the verbs need, on PyTorch's own c10d
// (TCPStore rendezvous hosted by rank 0, ProcessGroupGloo). The c10d headers stay in the .cpp: this
// header exposes only our own types. World size 1 = no store, no group; every collective is a no-op.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace omnibind::distributed {

// What the command line gave (-1 / empty = take it from the environment, as torchrun sets it).
struct LaunchOptions {
  int rank = -1;            // --rank, else RANK, else 0
  int world_size = -1;      // --world-size, else WORLD_SIZE, else 1
  std::string master;       // --master host:port, else MASTER_ADDR:MASTER_PORT (default 127.0.0.1:29500)
  double timeout_s = 60;    // --dist-timeout: rendezvous and every collective
  std::string comm_stats;   // --comm-stats PREFIX: each rank writes PREFIX.rank<R>.json at the end (CommStats)
};

struct RankInfo {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 60;
  std::string comm_stats;  // see LaunchOptions::comm_stats
};

// Where a rank's time went in collectives (docs/SCALING.md "Measured"): the time of each collective from
// its start to its wait() returning, i.e. the transfer plus the wait for slower ranks, per `what` label.
struct CommStats {
  struct Entry {
    int64_t calls = 0, bytes = 0;  // bytes: this rank's input tensors
    double seconds = 0;
  };
  double rendezvous_s = 0;  // connect(): store + check-in + Gloo group
  double collective_s = 0;  // sum over `by_what`
  int64_t calls = 0, bytes = 0;
  std::map<std::string, Entry> by_what;
};

// Flags over the environment; InputError (one line) for a rank outside [0, WORLD_SIZE), a world size
// below 1, a malformed port or address.
RankInfo resolve_rank_info(const LaunchOptions& options);

// A peer rank failed during a run: it exited, its connection dropped, or it did not answer in time.
class PeerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DistributedContext {
 public:
  DistributedContext();  // a single process (rank 0 of 1)
  ~DistributedContext();  // with RankInfo::comm_stats set: writes comm_stats_json() to PREFIX.rank<R>.json
  DistributedContext(DistributedContext&&) noexcept;
  DistributedContext& operator=(DistributedContext&&) noexcept;

  // Resolves the rank, then (world size > 1) rendezvous: rank 0 hosts the TCPStore, every rank
  // checks in under its own key; ranks missing after the timeout are named in one InputError line, as
  // are a port already in use, a rank started twice and ranks that disagree on WORLD_SIZE. Then a
  // Gloo process group over TCP.
  static DistributedContext connect(const LaunchOptions& options);
  static DistributedContext connect(const RankInfo& info);

  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  int local_rank() const { return info_.local_rank; }
  bool distributed() const { return info_.world_size > 1; }
  bool is_root() const { return info_.rank == 0; }
  const RankInfo& info() const { return info_; }
  const CommStats& comm_stats() const { return stats_; }
  // Seconds since connect() began (the denominator of the communication share).
  double seconds_since_connect() const;
  // {"rank","world_size","wall_s","rendezvous_s","collective_s","collective_share","calls","bytes","by_what":{...}}
  std::string comm_stats_json() const;

  // Collectives (CPU tensors; world size 1: no-ops / the tensor itself). PeerError when a peer fails.
  void barrier(const std::string& what = "barrier");
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what = "all-reduce");  // in place
  void broadcast(at::Tensor& tensor, int root, const std::string& what = "broadcast");             // in place
  // Every rank's tensor (same shape and dtype on every rank), in rank order.
  std::vector<at::Tensor> all_gather(const at::Tensor& tensor, const std::string& what = "all-gather");
  // Rows of every rank concatenated in rank order; ranks may hold different row counts (same trailing shape).
  // `counts`, when given, receives every rank's row count.
  at::Tensor all_gather_rows(const at::Tensor& rows, const std::string& what = "all-gather",
                             std::vector<int64_t>* counts = nullptr);

 private:
  struct Impl;
  void record(const std::string& what, double seconds, int64_t bytes);
  RankInfo info_;
  CommStats stats_;
  double started_ = 0;  // steady clock seconds at connect()
  std::unique_ptr<Impl> impl_;
};

// The contiguous share [begin, end) of n items that `rank` of `world` takes (the first n % world ranks
// take one more). Deterministic, independent of anything but the three numbers.
struct Share {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Share share_of(int64_t n, int rank, int world);

}  // namespace omnibind::distributed
