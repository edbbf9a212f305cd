#include "omnibind/distributed/distributed_context.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's libtorch is built with Gloo; the header declares it only under this macro
#endif
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <glog/logging.h>

#include <csignal>
#include <cstdio>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::distributed {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int64_t bytes_of(const std::vector<at::Tensor>& ts) {
  int64_t b = 0;
  for (const auto& t : ts) b += static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
  return b;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

int parse_int(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const long v = std::stol(text, &used);
    if (used == text.size() && v >= INT32_MIN && v <= INT32_MAX) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  throw InputError(what + " must be an integer, got '" + text + "'");
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string join_ranks(const std::vector<int>& ranks) {
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return out;
}

}  // namespace

struct DistributedContext::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const RankInfo& info, const std::string& what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw PeerError("rank " + std::to_string(info.rank) + ": " + what + " failed: a peer rank exited, dropped its connection " +
                      "or did not answer within " + seconds(info.timeout_s) + " (" + first_line(e.what()) + ")");
    }
  }
};

RankInfo resolve_rank_info(const LaunchOptions& o) {
  RankInfo info;
  info.timeout_s = o.timeout_s;
  info.comm_stats = o.comm_stats;
  require(o.timeout_s > 0, "--dist-timeout must be positive");
  const std::string env_world = env("WORLD_SIZE"), env_rank = env("RANK");
  info.world_size = o.world_size >= 0 ? o.world_size : env_world.empty() ? 1 : parse_int(env_world, "WORLD_SIZE");
  info.rank = o.rank >= 0 ? o.rank : env_rank.empty() ? 0 : parse_int(env_rank, "RANK");
  require(info.world_size >= 1, "WORLD_SIZE / --world-size must be at least 1, got " + std::to_string(info.world_size));
  require(info.rank >= 0 && info.rank < info.world_size, "RANK / --rank " + std::to_string(info.rank) + " is outside [0, " +
                                                             std::to_string(info.world_size) + ") for WORLD_SIZE " +
                                                             std::to_string(info.world_size));
  const std::string env_local = env("LOCAL_RANK");
  info.local_rank = env_local.empty() ? info.rank : parse_int(env_local, "LOCAL_RANK");
  std::string addr = env("MASTER_ADDR"), port = env("MASTER_PORT");
  if (!o.master.empty()) {
    const size_t colon = o.master.rfind(':');
    require(colon != std::string::npos && colon > 0 && colon + 1 < o.master.size(),
            "--master must be host:port, got '" + o.master + "'");
    addr = o.master.substr(0, colon);
    port = o.master.substr(colon + 1);
  }
  if (!addr.empty()) info.master_addr = addr;
  if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') info.master_addr = addr.substr(1, addr.size() - 2);
  if (!port.empty()) info.master_port = parse_int(port, "MASTER_PORT / --master port");
  require(info.master_port > 0 && info.master_port < 65536, "MASTER_PORT must be in 1..65535, got " + std::to_string(info.master_port));
  return info;
}

DistributedContext::DistributedContext() : started_(now_s()) {}

DistributedContext::~DistributedContext() {
  if (info_.comm_stats.empty()) return;
  try {
    write_bytes_atomically(info_.comm_stats + ".rank" + std::to_string(info_.rank) + ".json", comm_stats_json() + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: could not write --comm-stats: %s\n", first_line(e.what()).c_str());
  }
}

// Only the object that ends up holding the group writes the statistics.
DistributedContext::DistributedContext(DistributedContext&& other) noexcept
    : info_(std::move(other.info_)), stats_(std::move(other.stats_)), started_(other.started_), impl_(std::move(other.impl_)) {
  other.info_.comm_stats.clear();
}

DistributedContext& DistributedContext::operator=(DistributedContext&& other) noexcept {
  if (this != &other) {
    info_ = std::move(other.info_);
    stats_ = std::move(other.stats_);
    started_ = other.started_;
    impl_ = std::move(other.impl_);
    other.info_.comm_stats.clear();
  }
  return *this;
}

double DistributedContext::seconds_since_connect() const { return now_s() - started_; }

void DistributedContext::record(const std::string& what, double seconds, int64_t bytes) {
  auto& e = stats_.by_what[what];
  e.calls += 1;
  e.bytes += bytes;
  e.seconds += seconds;
  stats_.calls += 1;
  stats_.bytes += bytes;
  stats_.collective_s += seconds;
}

std::string DistributedContext::comm_stats_json() const {
  const double wall = seconds_since_connect();
  nlohmann::json j{{"rank", info_.rank},
                   {"world_size", info_.world_size},
                   {"wall_s", wall},
                   {"rendezvous_s", stats_.rendezvous_s},
                   {"collective_s", stats_.collective_s},
                   {"collective_share", wall > 0 ? stats_.collective_s / wall : 0.0},
                   {"calls", stats_.calls},
                   {"bytes", stats_.bytes}};
  j["by_what"] = nlohmann::json::object();
  for (const auto& [what, e] : stats_.by_what) j["by_what"][what] = {{"calls", e.calls}, {"seconds", e.seconds}, {"bytes", e.bytes}};
  return j.dump();
}

DistributedContext DistributedContext::connect(const LaunchOptions& options) { return connect(resolve_rank_info(options)); }

DistributedContext DistributedContext::connect(const RankInfo& info) {
  DistributedContext ctx;
  ctx.info_ = info;
  if (info.world_size == 1) return ctx;
  ctx.info_.comm_stats.clear();  // written by the returned object only (set again below)
  // A peer that died must surface as an error from a collective, not as SIGPIPE killing this rank.
  std::signal(SIGPIPE, SIG_IGN);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(info.timeout_s * 1000));
  const std::string where = info.master_addr + ":" + std::to_string(info.master_port);
  const std::string me = "rank " + std::to_string(info.rank) + " of " + std::to_string(info.world_size);
  auto impl = std::make_unique<Impl>();
  // c10d logs every failed bind and connect retry through glog; the rendezvous reports its own one-line
  // errors, so keep glog to fatal messages until the group is up.
  struct QuietGlog {
    int saved = FLAGS_minloglevel;
    QuietGlog() { FLAGS_minloglevel = 3; }
    ~QuietGlog() { FLAGS_minloglevel = saved; }
  } quiet_glog;

  // 1. The store: rank 0 hosts it (a port in use is the user's to fix), the others connect (retrying
  //    until the timeout: rank 0 may start later).
  //    Under torchrun's agent (TORCHELASTIC_USE_AGENT_STORE=True) the agent already hosts the store on
  //    MASTER_PORT: every rank connects as a client, under a prefix per restart attempt, as PyTorch does.
  const bool agent_store = env("TORCHELASTIC_USE_AGENT_STORE") == "True";
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(info.master_port);
  so.isServer = info.rank == 0 && !agent_store;
  so.waitWorkers = false;
  so.timeout = timeout;
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, so);
    if (agent_store) {
      const std::string attempt = env("TORCHELASTIC_RESTART_COUNT");
      impl->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + (attempt.empty() ? "0" : attempt), impl->store);
    }
  } catch (const std::exception& e) {
    if (so.isServer)
      throw InputError(me + ": cannot host the rendezvous on port " + std::to_string(info.master_port) +
                       " (in use by another job? pick another MASTER_PORT / --master-port): " + first_line(e.what()));
    throw InputError(me + ": rank 0 did not arrive: no rendezvous at " + where + " within " + seconds(info.timeout_s) + " (" +
                     first_line(e.what()) + ")");
  }
  c10d::Store& store = *impl->store;

  // 2. Check in under our own key; every rank waits for every key, so a missing one can be named.
  const std::string key = "omnibind/rank/" + std::to_string(info.rank);
  try {
    if (store.add(key + "/count", 1) > 1)
      throw InputError(me + ": rank " + std::to_string(info.rank) + " was started twice (check RANK / --rank)");
    if (info.rank == 0) store.set("omnibind/world_size", bytes(std::to_string(info.world_size)));
    store.set(key, bytes(std::to_string(info.world_size)));
    // A WORLD_SIZE disagreement is reported by every rank that sees it. The rank hosting the store
    // lingers (a few seconds at most) until the others checked in have read it too: leaving at once
    // would close the store under them and they would only see a broken connection.
    auto disagree = [&](const std::string& who, const std::string& w) {
      const std::string msg = me + ": " + who + " was started with WORLD_SIZE " + w + " but this rank with " +
                              std::to_string(info.world_size) + " (every rank needs the same WORLD_SIZE)";
      const int64_t seen = store.add("omnibind/world_size_disagreement", 1);
      if (so.isServer) {
        const auto linger = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5));
        for (int64_t s = seen; std::chrono::steady_clock::now() < linger; s = store.add("omnibind/world_size_disagreement", 0)) {
          int arrived = 0;
          for (int r = 0; r < info.world_size; ++r) arrived += store.check({"omnibind/rank/" + std::to_string(r)}) ? 1 : 0;
          if (s >= arrived) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      return InputError(msg);
    };
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::vector<int> missing;
      for (int r = 0; r < info.world_size; ++r) {
        const std::string k = "omnibind/rank/" + std::to_string(r);
        if (!store.check({k})) {
          missing.push_back(r);
          continue;
        }
        const std::string w = text(store.get(k));
        if (w != std::to_string(info.world_size)) throw disagree("rank " + std::to_string(r), w);
      }
      if (store.check({"omnibind/world_size"})) {
        const std::string w = text(store.get("omnibind/world_size"));
        if (w != std::to_string(info.world_size)) throw disagree("rank 0", w);
      }
      if (missing.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline)
        throw InputError(me + ": rank" + (missing.size() > 1 ? "s " : " ") + join_ranks(missing) + " did not arrive at the rendezvous " +
                         where + " within " + seconds(info.timeout_s) + " (" +
                         std::to_string(info.world_size - static_cast<int>(missing.size())) + " of " +
                         std::to_string(info.world_size) + " checked in)");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(me + ": the rendezvous at " + where + " failed (rank 0 exited?): " + first_line(e.what()));
  }

  // 3. A Gloo process group over TCP, on loopback when the master is local, else on GLOO_SOCKET_IFNAME
  //    (as in PyTorch) or the interface this host's name resolves to.
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const std::string ifname = env("GLOO_SOCKET_IFNAME");
    if (is_loopback(info.master_addr)) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else if (!ifname.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname.substr(0, ifname.find(','))));
    else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("omnibind/gloo", impl->store),
                                                              info.rank, info.world_size, options);
  } catch (const std::exception& e) {
    throw PeerError(me + ": could not connect the Gloo process group (a peer rank exited?): " + first_line(e.what()));
  }
  ctx.impl_ = std::move(impl);
  ctx.stats_.rendezvous_s = ctx.seconds_since_connect();
  ctx.info_.comm_stats = info.comm_stats;
  return ctx;
}

void DistributedContext::barrier(const std::string& what) {
  if (!impl_) return;
  const double t0 = now_s();
  impl_->wait(impl_->group->barrier(), info_, what);
  record(what, now_s() - t0, 0);
}

void DistributedContext::all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  if (!impl_) return;
  for (auto& t : tensors) {
    TORCH_CHECK(t.is_contiguous(), "all_reduce_sum needs contiguous tensors");
    std::vector<at::Tensor> one{t};
    const double t0 = now_s();
    impl_->wait(impl_->group->allreduce(one), info_, what);
    record(what, now_s() - t0, bytes_of(one));
  }
}

void DistributedContext::broadcast(at::Tensor& tensor, int root, const std::string& what) {
  if (!impl_) return;
  TORCH_CHECK(tensor.is_contiguous(), "broadcast needs a contiguous tensor");
  std::vector<at::Tensor> one{tensor};
  c10d::BroadcastOptions bo;
  bo.rootRank = root;
  const double t0 = now_s();
  impl_->wait(impl_->group->broadcast(one, bo), info_, what);
  record(what, now_s() - t0, bytes_of(one));
}

std::vector<at::Tensor> DistributedContext::all_gather(const at::Tensor& tensor, const std::string& what) {
  if (!impl_) return {tensor};
  std::vector<at::Tensor> in{tensor.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < info_.world_size; ++r) out[0].push_back(at::empty_like(in[0]));
  const double t0 = now_s();
  impl_->wait(impl_->group->allgather(out, in), info_, what);
  record(what, now_s() - t0, bytes_of(in));
  return out[0];
}

at::Tensor DistributedContext::all_gather_rows(const at::Tensor& rows, const std::string& what, std::vector<int64_t>* counts_out) {
  if (!impl_) {
    if (counts_out) *counts_out = {rows.size(0)};
    return rows;
  }
  auto counts = all_gather(at::full({1}, rows.size(0), at::kLong), what);
  int64_t most = 0;
  for (auto& c : counts) most = std::max(most, c.item<int64_t>());
  if (counts_out) {
    counts_out->clear();
    for (auto& c : counts) counts_out->push_back(c.item<int64_t>());
  }
  std::vector<int64_t> shape = rows.sizes().vec();
  shape[0] = most;
  at::Tensor padded = at::zeros(shape, rows.options());
  padded.narrow(0, 0, rows.size(0)).copy_(rows);
  auto parts = all_gather(padded, what);
  for (size_t r = 0; r < parts.size(); ++r) parts[r] = parts[r].narrow(0, 0, counts[r].item<int64_t>());
  return at::cat(parts, 0);
}

Share share_of(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  Share s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

}  // namespace omnibind::distributed
