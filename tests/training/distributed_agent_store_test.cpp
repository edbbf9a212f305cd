// Under torchrun the elastic agent hosts the TCPStore on MASTER_PORT and sets
// TORCHELASTIC_USE_AGENT_STORE=True: rank 0 must connect as a client like the others (as PyTorch's
// env:// rendezvous does). Here the test plays the agent: it hosts a c10d::TCPStore and starts 2 ranks.
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <filesystem>

#include "distributed_support.h"
#include "omnibind/common/atomic_file.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;
using testkit::dist::Child;

TEST(DistributedAgentStore, RanksJoinTheStoreTorchrunsAgentHosts) {
  const fs::path dir = testkit::make_temp_dir("dist_agent");
  toy::World(51).write_pool(dir / "pool", 40);
  auto pairs = [&](const std::string& out) {
    return std::vector<std::string>{"pairs", "--pools", (dir / "pool").string(), "--out", (dir / out).string(), "--quiet",
                                    "--threads", "1", "--block", "8", "--dist-timeout", "20"};
  };
  auto one = testkit::run_cli(pairs("t1.safetensors"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  c10d::TCPStoreOptions so;
  so.port = 0;  // any free port
  so.isServer = true;
  so.waitWorkers = false;
  auto agent = std::make_shared<c10d::TCPStore>("127.0.0.1", so);
  const int port = agent->getPort();
  std::vector<std::unique_ptr<Child>> ranks;
  for (int r = 0; r < 2; ++r) {
    auto env = testkit::dist::rank_env(r, 2, port);
    env.emplace_back("TORCHELASTIC_USE_AGENT_STORE", "True");
    env.emplace_back("TORCHELASTIC_RESTART_COUNT", "0");
    ranks.push_back(std::make_unique<Child>(pairs("t2.safetensors"), env));
  }
  for (auto& c : ranks) {
    ASSERT_TRUE(c->wait(60)) << c->err();
    EXPECT_EQ(c->exit_code, 0) << c->err();
  }
  EXPECT_EQ(read_file_bytes((dir / "t1.safetensors").string()), read_file_bytes((dir / "t2.safetensors").string()));
}

}  // namespace
}  // namespace omnibind::training
