// SIGKILL the server while clients write, restart it: every acknowledged write is still there and
// the index is consistent (the ack is sent only after the catalog commit).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "testing/test_support.h"

using json = nlohmann::json;

namespace {
std::vector<float> random_vector(std::mt19937& rng) {
  std::normal_distribution<float> g;
  std::vector<float> v(32);
  for (auto& x : v) x = g(rng);
  return v;
}
}  // namespace

TEST(ServerRestart, KilledDuringWritesLosesNothingCommitted) {
  auto tmp = omnibind::testkit::make_temp_dir("restart");
  const std::string dir = tmp + "/idx";
  ASSERT_EQ(omnibind::testkit::run_cli({"index", "create", dir, "--dim", "32"}).exit_code, 0);
  std::mutex mu;
  std::vector<std::pair<int64_t, std::vector<float>>> acked;
  for (int cycle = 0; cycle < 3; ++cycle) {
    omnibind::testkit::ServeChild srv({"--index", dir, "--threads", "4"});
    ASSERT_GT(srv.port, 0) << "server did not start";
    std::atomic<bool> stop{false};
    std::atomic<int> acks{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937 rng(cycle * 10 + w);
        httplib::Client c("127.0.0.1", srv.port);
        c.set_read_timeout(5, 0);
        while (!stop) {
          auto v = random_vector(rng);
          json body{{"items", {{{"vector", v}, {"modality", "audio"}, {"source", "w" + std::to_string(w)}}}}};
          auto res = c.Post("/v1/items", body.dump(), "application/json");
          if (!res) break;  // server gone
          if (res->status != 200) continue;
          auto ids = json::parse(res->body)["ids"];
          std::lock_guard lk(mu);
          acked.emplace_back(ids[0].get<int64_t>(), v);
          ++acks;
        }
      });
    }
    while (acks < 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    srv.stop(SIGKILL);  // mid-stream: requests are in flight
    stop = true;
    for (auto& t : writers) t.join();

    // Restart and check every acknowledged item.
    omnibind::testkit::ServeChild again({"--index", dir, "--threads", "4"});
    ASSERT_GT(again.port, 0) << "server did not restart after SIGKILL";
    httplib::Client c("127.0.0.1", again.port);
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    const int64_t count = json::parse(health->body)["items"];
    EXPECT_GE(count, static_cast<int64_t>(acked.size()));
    for (auto& [id, v] : acked) {
      auto res = c.Post("/v1/search", json{{"query", {{"vector", v}}}, {"k", 1}}.dump(), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      EXPECT_EQ(json::parse(res->body)["results"][0]["id"], id);
    }
    EXPECT_TRUE(again.stop(SIGTERM)) << "graceful stop did not exit 0";
  }
  EXPECT_GE(acked.size(), 90u);
}
