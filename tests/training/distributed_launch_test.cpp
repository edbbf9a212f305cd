// Launching ranks (torchrun conventions, loopback): wrong WORLD_SIZE / RANK, a port in use, a rank that
// never arrives, ranks that disagree on WORLD_SIZE: one line, exit 2. omnibind launch prefixes each
// rank's stderr and returns the failing rank's status. A rank killed mid-run: the other one stops with a
// clear error within the timeout, and a rerun with --resume finishes.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "distributed_support.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;
using testkit::dist::BusyPort;
using testkit::dist::Child;
using testkit::dist::free_port;
using testkit::dist::rank_env;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

struct PoolDir {
  fs::path dir;
  explicit PoolDir(const std::string& tag) : dir(testkit::make_temp_dir(tag)) { toy::World(41).write_pool(dir / "pool", 40); }
  std::vector<std::string> pairs(const std::string& out = "t.safetensors") const {
    return {"pairs", "--pools", (dir / "pool").string(), "--out", (dir / out).string(), "--quiet", "--threads", "1"};
  }
};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(DistributedLaunch, RankOutsideWorldIsOneLineExit2) {
  PoolDir p("dist_bad_rank");
  testkit::expect_exit2(plus(p.pairs(), {"--world-size", "2", "--rank", "2"}), (p.dir / "t.safetensors").string(), "outside [0, 2)");
  testkit::expect_exit2(plus(p.pairs(), {"--world-size", "0"}), (p.dir / "t.safetensors").string(), "at least 1");
  testkit::expect_exit2(plus(p.pairs(), {"--world-size", "2", "--master", "nocolon"}), (p.dir / "t.safetensors").string(),
                        "host:port");
}

TEST(DistributedLaunch, WrongWorldSizeFromTheEnvironmentIsOneLineExit2) {
  PoolDir p("dist_bad_env");
  ::setenv("WORLD_SIZE", "two", 1);
  auto r = testkit::run_cli(p.pairs());
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("WORLD_SIZE must be an integer"), std::string::npos) << r.err;
  // Two ranks that disagree on WORLD_SIZE: the one that notices says so, in one line.
  const int port = free_port();
  Child r0(p.pairs("a.safetensors"), rank_env(0, 2, port));
  Child r1(plus(p.pairs("a.safetensors"), {"--dist-timeout", "10"}), rank_env(1, 3, port));
  ASSERT_TRUE(r1.wait(30));
  EXPECT_EQ(r1.exit_code, 2) << r1.err();
  EXPECT_TRUE(one_line(r1.err())) << r1.err();
  EXPECT_NE(r1.err().find("WORLD_SIZE"), std::string::npos) << r1.err();
  r0.wait(0);
  // Rank 0 (which hosts the store) arriving last sees the disagreement first: it must not leave before
  // the other rank has read it (that rank would only see a broken connection).
  const int port2 = free_port();
  Child late1(plus(p.pairs("b.safetensors"), {"--dist-timeout", "10"}), rank_env(1, 3, port2));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  Child late0(p.pairs("b.safetensors"), rank_env(0, 2, port2));
  ASSERT_TRUE(late0.wait(30));
  ASSERT_TRUE(late1.wait(30));
  for (Child* c : {&late0, &late1}) {
    EXPECT_EQ(c->exit_code, 2) << c->err();
    EXPECT_TRUE(one_line(c->err())) << c->err();
    EXPECT_NE(c->err().find("every rank needs the same WORLD_SIZE"), std::string::npos) << c->err();
  }
}

TEST(DistributedLaunch, PortInUseIsOneLineExit2) {
  PoolDir p("dist_busy");
  BusyPort busy;
  testkit::expect_exit2(plus(p.pairs(), {"--world-size", "2", "--rank", "0", "--master", "127.0.0.1:" + std::to_string(busy.port),
                                         "--dist-timeout", "5"}),
                        (p.dir / "t.safetensors").string(), "cannot host the rendezvous on port " + std::to_string(busy.port));
  testkit::expect_exit2(plus({"launch", "--nproc", "2", "--master-port", std::to_string(busy.port), "--"}, p.pairs()),
                        (p.dir / "t.safetensors").string(), "is not free");
}

TEST(DistributedLaunch, MissingRankIsNamedAfterTheTimeout) {
  PoolDir p("dist_missing");
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  testkit::expect_exit2(plus(p.pairs(), {"--world-size", "3", "--rank", "0", "--master", "127.0.0.1:" + std::to_string(port),
                                         "--dist-timeout", "2"}),
                        (p.dir / "t.safetensors").string(), "ranks 1, 2 did not arrive");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20);
}

TEST(DistributedLaunch, LaunchPrefixesStderrAndReturnsTheFailingStatus) {
  PoolDir p("dist_launch_fail");
  auto r = testkit::run_cli({"launch", "--nproc", "2", "--", "pairs", "--pools", (p.dir / "nope").string(), "--out",
                             (p.dir / "t.safetensors").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("[rank "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("] omnibind pairs: "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(p.dir / "t.safetensors"));
  testkit::expect_exit2({"launch", "--nproc", "0", "--", "pairs"}, (p.dir / "t.safetensors").string(), "--nproc");
}

TEST(DistributedLaunch, KilledRankGivesTheOtherAClearErrorAndARerunResumes) {
  const fs::path dir = testkit::make_temp_dir("dist_kill");
  toy::World(43).write_pool(dir / "pool", 60);
  write_bytes_atomically((dir / "config.json").string(), toy::kConfigJson);
  auto train = [&](const std::vector<std::string>& extra) {
    return plus({"train", "--pools", (dir / "pool").string(), "--config", (dir / "config.json").string(), "--out",
                 (dir / "heads.safetensors").string(), "--epochs-proj", "1", "--epochs-router", "8", "--batch", "64",
                 "--threads", "1", "--seed", "2", "--dist-timeout", "20"},
                extra);
  };
  const int port = free_port();
  Child r0(train({}), rank_env(0, 2, port));
  Child r1(train({}), rank_env(1, 2, port));
  // Rank 0 reports router epochs once every head is trained (and in its state file): kill rank 1 then.
  ASSERT_TRUE(r0.wait_for_output("router epoch 1/8", 60)) << r0.err();
  ::kill(r1.pid, SIGKILL);
  r1.wait(5);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(r0.wait(20)) << "rank 0 did not stop within the timeout: " << r0.err();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count(), 20);
  EXPECT_NE(r0.exit_code, 0);
  const std::string err = r0.err();
  const std::string last = err.substr(err.rfind('\n', err.size() - 2) + 1);
  EXPECT_NE(last.find("omnibind train: "), std::string::npos) << err;
  EXPECT_NE(last.find("rank 0: "), std::string::npos) << last;
  EXPECT_NE(last.find("a peer rank exited"), std::string::npos) << last;
  ASSERT_TRUE(fs::exists(dir / "heads.safetensors.train-state.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "heads.safetensors"));
  auto state = tensor_io::read_safetensors((dir / "heads.safetensors.train-state.safetensors").string());
  EXPECT_NE(state.metadata["heads_done"], "0");
  // The rerun picks up rank 0's state: heads are not retrained.
  auto rerun = testkit::run_cli(plus({"launch", "--nproc", "2", "--"}, train({"--resume", "--quiet"})));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  auto out = tensor_io::read_safetensors((dir / "heads.safetensors").string());
  auto before = tensor_io::to_tensor(state.tensors.at("projs.0.Head2.mlps.0.weight"));
  auto after = tensor_io::to_tensor(out.tensors.at("projs.0.Head2.mlps.0.weight"));
  EXPECT_TRUE(before.equal(after));
  EXPECT_FALSE(fs::exists(dir / "heads.safetensors.train-state.safetensors"));
}

}  // namespace
}  // namespace omnibind::training
