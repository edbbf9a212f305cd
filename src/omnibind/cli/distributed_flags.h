// The torchrun-style flags every distributed verb takes (docs/SCALING.md); the environment
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK) fills what they leave out.
#pragma once
#include <CLI/CLI.hpp>

#include "omnibind/distributed/distributed_context.h"

namespace omnibind::cli {

inline void add_distributed_flags(CLI::App& app, distributed::LaunchOptions& o) {
  app.add_option("--rank", o.rank, "This process's rank (default: RANK, else 0)");
  app.add_option("--world-size", o.world_size, "Number of ranks (default: WORLD_SIZE, else 1 = one process)");
  app.add_option("--master", o.master, "Rendezvous host:port that rank 0 hosts (default: MASTER_ADDR:MASTER_PORT, else 127.0.0.1:29500)");
  app.add_option("--dist-timeout", o.timeout_s, "Seconds to wait for every rank at the rendezvous and in each collective")
      ->capture_default_str();
  app.add_option("--comm-stats", o.comm_stats,
                 "Write this rank's time in collectives (communication + waiting for other ranks) as JSON to PREFIX.rank<R>.json");
}

}  // namespace omnibind::cli
