// 1 rank x 2 threads vs 2 ranks x 1 thread (omnibind launch, loopback Gloo) for mining and training, on
// a generated pool (docs/SCALING.md, docs/PERFORMANCE.md "Distributed"):
//   bench_distributed [--n ROWS_PER_MODALITY] [--dim D] [--omnibind PATH] [--dir WORKDIR] [--only mining]
// Prints JSON: wall seconds of each run (the whole CLI process: pool open, rendezvous, work, write) and
// whether the 2-rank tuples file is byte-identical to a 1-rank x 1-thread one (same GEMM partitioning).
#include <ATen/ATen.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/training/embedding_pool.h"

using namespace omnibind;
namespace fs = std::filesystem;

namespace {

void write_pool(const fs::path& dir, int64_t n, int64_t dim) {
  training::PoolManifest m;
  m.experts = {{"AT", {"audio", "text"}, dim}, {"IT", {"image", "text"}, dim}, {"PI", {"point", "image"}, dim}};
  m.backbone = "IT";
  const int64_t classes = 100;
  for (int64_t c = 0; c < classes; ++c) m.classes.push_back("c" + std::to_string(c));
  at::manual_seed(7);
  std::map<std::string, at::Tensor> centres;
  for (const char* e : {"AT", "IT", "PI"}) {
    at::Tensor c = at::randn({classes, dim});
    centres[e] = c / c.norm(2, 1, true);
  }
  training::PoolWriter w(dir, m);
  w.set_half(true);
  const std::map<std::string, std::vector<std::string>> experts_of{
      {"audio", {"AT"}}, {"text", {"AT", "IT"}}, {"image", {"IT", "PI"}}, {"point", {"PI"}}};
  for (const auto& [modality, experts] : experts_of) {
    at::Tensor labels = at::randint(classes, {n}, at::kLong);
    std::map<std::string, at::Tensor> rows;
    for (const auto& e : experts) {
      at::Tensor x = centres[e].index_select(0, labels) + 0.08 * at::randn({n, dim});
      rows[e] = x / x.norm(2, 1, true);
    }
    std::map<std::string, at::Tensor> cols{{"label", labels}};
    if (modality == "text") cols["source"] = at::randint(2, {n}, at::kLong);
    w.add(modality, rows, cols);
  }
  w.finish();
}

double run(const std::vector<std::string>& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_distributed: failed: %s ...\n", args.size() > 1 ? args[1].c_str() : "");
    std::exit(1);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  common::keep_freed_memory_in_process();
  int64_t n = 20000, dim = 256;
  std::string bin = OMNIBIND_BINARY;
  fs::path dir = fs::temp_directory_path() / ("bench_distributed_" + std::to_string(::getpid()));
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--n") n = std::atoll(v.c_str());
    else if (a == "--dim") dim = std::atoll(v.c_str());
    else if (a == "--omnibind") bin = v;
    else if (a == "--dir") dir = v;
    else if (a == "--only") only = v;
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_pool(dir / "pool", n, dim);
  const std::string d = std::to_string(dim);
  write_bytes_atomically((dir / "config.json").string(),
                         R"({"experts": {"AT": {"modalities": ["audio", "text"], "dim": )" + d +
                             R"(}, "IT": {"modalities": ["image", "text"], "dim": )" + d +
                             R"(}, "PI": {"modalities": ["point", "image"], "dim": )" + d +
                             R"(}}, "backbone": "IT", "heads_per_space": 2, "projector_hidden": 512, "router_hidden": [128, 64],
  "text_temperature": 10, "router_inputs": {"audio": ["AT"], "image": ["IT"], "point": ["PI"], "text": ["AT", "IT"]}})");
  const std::string pool = (dir / "pool").string();
  const std::vector<std::string> launch2{bin, "launch", "--nproc", "2", "--"};
  auto pairs = [&](const std::string& out, const std::string& threads) {
    return std::vector<std::string>{"pairs", "--pools", pool, "--out", (dir / out).string(), "--threads", threads, "--quiet",
                                    "--block", "4096"};
  };
  nlohmann::json out{{"rows_per_modality", n}, {"dim", dim}, {"experts", 3}, {"modalities", 4}};
  const double m1 = run(cat({bin}, pairs("t1.safetensors", "2")));
  const double m2 = run(cat(launch2, pairs("t2.safetensors", "1")));
  const double m0 = run(cat({bin}, pairs("t0.safetensors", "1")));
  out["mining"] = {{"one_rank_two_threads_s", m1},
                   {"two_ranks_one_thread_s", m2},
                   {"one_rank_one_thread_s", m0},
                   {"anchors", 4 * n},
                   {"two_ranks_identical_to_one_rank_one_thread", read_file_bytes((dir / "t0.safetensors").string()) ==
                                                                       read_file_bytes((dir / "t2.safetensors").string())},
                   {"one_thread_identical_to_two_threads", read_file_bytes((dir / "t0.safetensors").string()) ==
                                                                read_file_bytes((dir / "t1.safetensors").string())}};
  if (only == "mining") {
    std::printf("%s\n", out.dump(2).c_str());
    fs::remove_all(dir);
    return 0;
  }
  auto train = [&](const std::string& o, const std::string& threads) {
    return std::vector<std::string>{"train", "--pools", pool, "--config", (dir / "config.json").string(), "--pairs",
                                    (dir / "t1.safetensors").string(), "--out", (dir / o).string(), "--threads", threads,
                                    "--epochs-proj", "1", "--epochs-router", "1", "--batch", "512", "--quiet"};
  };
  const double t1 = run(cat({bin}, train("h1.safetensors", "2")));
  const double t2 = run(cat(launch2, train("h2.safetensors", "1")));
  out["training"] = {{"one_rank_two_threads_s", t1}, {"two_ranks_one_thread_s", t2}, {"tuples", 4 * n},
                     {"batch", 512}, {"epochs", "1 per head, 1 router"}};
  std::printf("%s\n", out.dump(2).c_str());
  fs::remove_all(dir);
  return 0;
}
