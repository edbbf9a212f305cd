// 1 rank x 2 threads vs 2 ranks x 1 thread (omnibind launch, loopback Gloo) for extraction, mining and
// training, with each rank's time in collectives (docs/SCALING.md "Measured", docs/PERFORMANCE.md
// "Distributed"):
//   bench_distributed [--n ROWS_PER_MODALITY] [--dim D] [--reps R] [--omnibind PATH] [--dir WORKDIR]
//                     [--only mining|training|extraction] [--bundle DIR --images DIR [--items N] [--shard-items S]]
// Each phase runs A = 1 rank x 2 threads and B = 2 ranks x 1 thread R times, interleaved (A B, B A, A B,
// ...) so that a shared machine's load falls on both alike; the JSON has every run (wall seconds of the
// whole CLI process, the load average before it, and per rank the seconds spent inside collectives —
// transfer plus waiting for the other rank — from `--comm-stats`), and the medians. Extraction needs a
// bundle (e.g. `bench_bundle_folder --write-bundle DIR`, mini widths) and a folder of images.
#include <ATen/ATen.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <algorithm>
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

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double run(const std::vector<std::string>& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(2, 1);  // the verbs' stdout lines go to stderr: stdout is the bench's JSON
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

// One timed run with --comm-stats: wall, load average before, and every rank's statistics file.
nlohmann::json timed(const std::vector<std::string>& args, const fs::path& stats_prefix, int ranks) {
  for (int r = 0; r < ranks; ++r) fs::remove(stats_prefix.string() + ".rank" + std::to_string(r) + ".json");
  nlohmann::json j{{"load_before", loadavg()}};
  j["wall_s"] = run(cat(args, {"--comm-stats", stats_prefix.string()}));
  double most = 0;
  for (int r = 0; r < ranks; ++r) {
    std::ifstream f(stats_prefix.string() + ".rank" + std::to_string(r) + ".json");
    nlohmann::json s = nlohmann::json::parse(f);
    j["ranks"].push_back(s);
    most = std::max(most, s["collective_share"].get<double>());
  }
  j["collective_share_max_rank"] = most;
  return j;
}

// A = one process x 2 threads, B = launch --nproc 2 x 1 thread; R interleaved pairs; medians.
nlohmann::json ab(const std::string& bin, const std::function<std::vector<std::string>(const std::string& tag, const std::string& threads)>& verb,
                  const fs::path& dir, int reps) {
  nlohmann::json a = nlohmann::json::array(), b = nlohmann::json::array();
  std::vector<double> wa, wb, sb, cb, rb;
  for (int i = 0; i < reps; ++i) {
    auto run_a = [&] {
      a.push_back(timed(cat({bin}, verb("a" + std::to_string(i), "2")), dir / "stats_a", 1));
      wa.push_back(a.back()["wall_s"].get<double>());
    };
    auto run_b = [&] {
      b.push_back(timed(cat({bin, "launch", "--nproc", "2", "--"}, verb("b" + std::to_string(i), "1")), dir / "stats_b", 2));
      const auto& last = b.back();
      wb.push_back(last["wall_s"].get<double>());
      sb.push_back(last["collective_share_max_rank"].get<double>());
      double c = 0, rv = 0;
      for (const auto& r : last["ranks"]) {
        c = std::max(c, r["collective_s"].get<double>());
        rv = std::max(rv, r["rendezvous_s"].get<double>());
      }
      cb.push_back(c);
      rb.push_back(rv);
    };
    if (i % 2 == 0) { run_a(); run_b(); } else { run_b(); run_a(); }
  }
  return {{"one_rank_two_threads", {{"runs", a}, {"median_wall_s", median(wa)}}},
          {"two_ranks_one_thread", {{"runs", b}, {"median_wall_s", median(wb)}, {"median_collective_s_max_rank", median(cb)},
                                    {"median_collective_share_max_rank", median(sb)}, {"median_rendezvous_s_max_rank", median(rb)}}},
          {"speedup_median", median(wb) > 0 ? median(wa) / median(wb) : 0.0}};
}

}  // namespace

int main(int argc, char** argv) {
  common::keep_freed_memory_in_process();
  int64_t n = 20000, dim = 256, items = 64, shard_items = 16;
  int reps = 3;
  std::string bin = OMNIBIND_BINARY, only, bundle, images;
  fs::path dir = fs::temp_directory_path() / ("bench_distributed_" + std::to_string(::getpid()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--n") n = std::atoll(v.c_str());
    else if (a == "--dim") dim = std::atoll(v.c_str());
    else if (a == "--reps") reps = std::atoi(v.c_str());
    else if (a == "--omnibind") bin = v;
    else if (a == "--dir") dir = v;
    else if (a == "--only") only = v;
    else if (a == "--bundle") bundle = v;
    else if (a == "--images") images = v;
    else if (a == "--items") items = std::atoll(v.c_str());
    else if (a == "--shard-items") shard_items = std::atoll(v.c_str());
    else { std::fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  nlohmann::json out{{"reps", reps}, {"load_at_start", loadavg()}};
  auto want = [&](const std::string& phase) { return only.empty() || only == phase; };

  if (want("extraction") && !bundle.empty() && !images.empty()) {
    // The first N images of the folder (sorted, recursed) as a list file.
    std::vector<std::string> files;
    for (auto& e : fs::recursive_directory_iterator(images)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(fs::absolute(e.path()).string());
    }
    std::sort(files.begin(), files.end());
    if (static_cast<int64_t>(files.size()) > items) files.resize(items);
    std::string list;
    for (auto& f : files) list += f + "\n";
    write_bytes_atomically((dir / "images.txt").string(), list);
    auto embed = [&](const std::string& tag, const std::string& threads) {
      fs::remove_all(dir / ("pool_" + tag));
      return std::vector<std::string>{"embed", "--model", bundle, "--modality", "image", "--manifest", (dir / "images.txt").string(),
                                      "--pool", (dir / ("pool_" + tag)).string(), "--shard-items", std::to_string(shard_items),
                                      "--batch", "8", "--threads", threads};
    };
    out["extraction"] = ab(bin, embed, dir, reps);
    out["extraction"]["items"] = files.size();
    out["extraction"]["shard_items"] = shard_items;
    out["extraction"]["bundle"] = bundle;
  }
  if (want("mining") || want("training")) {
    write_pool(dir / "pool", n, dim);
    out["rows_per_modality"] = n;
    out["dim"] = dim;
  }
  const std::string pool = (dir / "pool").string();
  auto pairs = [&](const std::string& tag, const std::string& threads) {
    return std::vector<std::string>{"pairs", "--pools", pool, "--out", (dir / ("t_" + tag + ".safetensors")).string(), "--threads",
                                    threads, "--quiet", "--block", "4096"};
  };
  if (want("mining") || want("training")) {
    // The tuples for training (and the byte-identity check: 2 ranks x 1 thread == 1 rank x 1 thread).
    run(cat({bin}, pairs("ref1", "1")));
  }
  if (want("mining")) {
    out["mining"] = ab(bin, pairs, dir, reps);
    out["mining"]["anchors"] = 4 * n;
    out["mining"]["two_ranks_identical_to_one_rank_one_thread"] =
        read_file_bytes((dir / "t_ref1.safetensors").string()) == read_file_bytes((dir / "t_b0.safetensors").string());
  }
  if (want("training")) {
    const std::string d = std::to_string(dim);
    write_bytes_atomically((dir / "config.json").string(),
                           R"({"experts": {"AT": {"modalities": ["audio", "text"], "dim": )" + d +
                               R"(}, "IT": {"modalities": ["image", "text"], "dim": )" + d +
                               R"(}, "PI": {"modalities": ["point", "image"], "dim": )" + d +
                               R"(}}, "backbone": "IT", "heads_per_space": 2, "projector_hidden": 512, "router_hidden": [128, 64],
  "text_temperature": 10, "router_inputs": {"audio": ["AT"], "image": ["IT"], "point": ["PI"], "text": ["AT", "IT"]}})");
    auto train = [&](const std::string& tag, const std::string& threads) {
      return std::vector<std::string>{"train", "--pools", pool, "--config", (dir / "config.json").string(), "--pairs",
                                      (dir / "t_ref1.safetensors").string(), "--out", (dir / ("h_" + tag + ".safetensors")).string(),
                                      "--threads", threads, "--epochs-proj", "1", "--epochs-router", "1", "--batch", "512", "--quiet"};
    };
    out["training"] = ab(bin, train, dir, reps);
    out["training"]["tuples"] = 4 * n;
    out["training"]["batch"] = 512;
    out["training"]["epochs"] = "1 per head, 1 router";
  }
  out["load_at_end"] = loadavg();
  std::printf("%s\n", out.dump(2).c_str());
  fs::remove_all(dir);
  return 0;
}
