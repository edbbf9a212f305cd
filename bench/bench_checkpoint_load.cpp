// Checkpoint loading speed: load_checkpoint on a synthetic torch.save state dict (zip and legacy
// formats) vs torch.load(weights_only=True) (bench/python/checkpoint_load.py) in the same run on
// the same files, warm page cache. "open": until every tensor is available (we map lazily, torch
// reads everything); "read": open plus summing every tensor as float64 (touches all bytes).
//   bench_checkpoint_load [--mb 256] [--repeat 5] [--no-baseline]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "omnibind/common/process_memory.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string run(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  return pclose(p) == 0 ? out : "";
}
}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int mb = 256, repeat = 5;
  bool baseline = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) mb = std::stoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
    else if (a == "--no-baseline") baseline = false;
  }
  at::set_num_threads(1);
  const std::string script = "/usr/bin/python3 " + std::string(OMNIBIND_SOURCE_DIR) + "/bench/python/checkpoint_load.py";
  const auto dir = std::filesystem::temp_directory_path() / ("omnibind_bench_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  nlohmann::json out = {{"megabytes", mb}, {"repeat", repeat}, {"threads", 1}};
  for (const char* fmt : {"zip", "legacy"}) {
    const std::string path = (dir / (std::string(fmt) + ".pt")).string();
    if (run(script + " make " + path + " " + std::to_string(mb) + " " + fmt).empty() && !std::filesystem::exists(path)) {
      out["error"] = "python3 with torch is needed to make the test checkpoint";
      break;
    }
    double best_open = 1e9, best_read = 1e9;
    size_t n = 0;
    for (int r = 0; r < repeat; ++r) {
      const double t0 = now_s();
      auto sd = omnibind::tensor_io::load_checkpoint(path);
      const double t1 = now_s();
      double s = 0;
      for (auto& name : sd.names()) s += omnibind::tensor_io::to_tensor(sd.at(name)).to(at::kDouble).sum().item<double>();
      const double t2 = now_s();
      best_open = std::min(best_open, t1 - t0), best_read = std::min(best_read, t2 - t0);
      n = sd.size();
      (void)s;
    }
    nlohmann::json r = {{"tensors", n}, {"cpp_open_s", best_open}, {"cpp_read_s", best_read}};
    if (baseline) {
      std::string py = run(script + " load " + path + " " + std::to_string(repeat));
      if (!py.empty()) {
        auto b = nlohmann::json::parse(py);
        r["torch_load_open_s"] = b["open_s"];
        r["torch_load_read_s"] = b["read_s"];
        r["speedup_open"] = b["open_s"].get<double>() / best_open;
        r["speedup_read"] = b["read_s"].get<double>() / best_read;
      }
    }
    out[fmt] = r;
  }
  std::filesystem::remove_all(dir);
  std::cout << out.dump(1) << std::endl;
}
