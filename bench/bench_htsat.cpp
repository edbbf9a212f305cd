// HTSAT towers at the released widths with random weights (no file needed): clips/s per preset and
// precision, one JSON line each. Input: a batch of 10 s log-mels ([B, 1, 1001, 64]; CLAP_G:
// [B, 4, 1001, 64], every clip 'longer' so the AFF path runs, or none with --fusion-longer 0).
// Includes the projection MLP (768|1024 -> proj -> proj).
// Baseline (same run, same shapes, batch and threads): with --reference-git DIR (a fetched
// zehanwang01/OmniBind git mirror), bench/python/htsat_reference.py builds the reference module from
// that mirror and times it; a "ratio" line follows (reference seconds / ours, wall and CPU). Skipped
// without the option or when the directory is absent.
//   bench_htsat [--preset wavcaps|clap-fusion|clap-base|all] [--precision fp32|bf16|all]
//               [--threads 2] [--batch 4] [--warmup 1] [--iters 2] [--fusion-longer 1]
//               [--reference-git DIR]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ctime>
#include <string>
#include <vector>

#include "omnibind/common/process_memory.h"
#include "omnibind/experts/htsat/htsat_model.h"
#include "omnibind/experts/htsat/projection_mlp.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/compute_threads.h"

using namespace omnibind::experts::htsat;
using omnibind::experts::WeightSource;

namespace {

// Runs the PyTorch reference baseline; an empty object when it did not produce JSON.
nlohmann::json reference(const std::string& git_dir, const std::string& preset, const std::string& prec, int threads,
                         int batch, int warmup, int iters, int longer) {
  const std::string cmd = "/usr/bin/python3 " + std::string(OMNIBIND_SOURCE_DIR) + "/bench/python/htsat_reference.py '" +
                          git_dir + "' " + preset + " " + prec + " " + std::to_string(threads) + " " +
                          std::to_string(batch) + " " + std::to_string(warmup) + " " + std::to_string(iters) + " " +
                          std::to_string(longer) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nlohmann::json::object();
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  const auto start = out.rfind("{\"impl\"");
  if (start == std::string::npos) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(out.substr(start));
  } catch (const nlohmann::json::exception&) {
    return nlohmann::json::object();
  }
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  std::string preset = "all", precision = "all";
  std::string reference_git;
  int threads = 2, batch = 4, warmup = 1, iters = 2, fusion_longer = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--preset") preset = v;
    else if (k == "--precision") precision = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else if (k == "--iters") iters = std::stoi(v);
    else if (k == "--fusion-longer") fusion_longer = std::stoi(v);
    else if (k == "--reference-git") reference_git = v;
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  threads = omnibind::tensor_io::set_compute_threads(threads);
  c10::InferenceMode guard;
  for (std::string name : {"wavcaps", "clap-fusion", "clap-base"}) {
    if (preset != "all" && preset != name) continue;
    const HtsatConfig c = htsat_preset(name);
    for (std::string prec : {"fp32", "bf16"}) {
      if (precision != "all" && precision != prec) continue;
      const auto dtype = prec == "bf16" ? at::kBFloat16 : at::kFloat;
      auto t0 = std::chrono::steady_clock::now();
      // A float32 source: load() casts the Linear weights to the compute dtype.
      WeightSource w = WeightSource::random(at::kFloat, 1);
      HtsatModel model = HtsatModel::load(w, c, dtype);
      ProjectionMlp proj = ProjectionMlp::load(w, "audio_proj.", c.num_features(), c.proj_dim, c.proj_dim, dtype);
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      at::manual_seed(0);
      at::Tensor mel = at::randn({batch, c.in_channels(), c.frames, c.mel_bins}) * 20 - 40;
      std::vector<bool> longer;
      if (c.fusion) longer.assign(batch, fusion_longer != 0);
      auto run = [&] { return l2_normalize(proj.forward(model.forward(mel, longer))); };
      for (int i = 0; i < warmup; ++i) run();
      auto s = std::chrono::steady_clock::now();
      std::clock_t c0 = std::clock();
      for (int i = 0; i < iters; ++i) run();
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count() / iters;
      const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / iters;
      std::printf(
          "{\"impl\": \"omnibind-cpp\", \"model\": \"htsat\", \"preset\": \"%s\", \"precision\": \"%s\", "
          "\"fusion_longer\": %s, \"batch\": %d, \"threads\": %d, \"warmup\": %d, \"iters\": %d, "
          "\"seconds_per_batch\": %.3f, \"clips_per_s\": %.3f, \"cpu_seconds_per_batch\": %.3f, "
          "\"clips_per_cpu_s\": %.3f, \"random_init_s\": %.2f}\n",
          name.c_str(), prec.c_str(), c.fusion ? (fusion_longer ? "true" : "false") : "null", batch, threads, warmup,
          iters, sec, batch / sec, cpu, batch / cpu, load_s);
      std::fflush(stdout);
      if (reference_git.empty() || !std::filesystem::exists(reference_git)) continue;
      nlohmann::json ref = reference(reference_git, name, prec, threads, batch, warmup, iters, fusion_longer);
      if (!ref.contains("seconds_per_batch")) {
        std::printf("{\"baseline\": \"pytorch-reference\", \"preset\": \"%s\", \"precision\": \"%s\", \"error\": \"no result\"}\n",
                    name.c_str(), prec.c_str());
        continue;
      }
      std::printf("%s\n", ref.dump().c_str());
      std::printf("{\"ratio\": \"reference / omnibind\", \"preset\": \"%s\", \"precision\": \"%s\", \"wall\": %.2f, \"cpu\": %.2f}\n",
                  name.c_str(), prec.c_str(), ref["seconds_per_batch"].get<double>() / sec,
                  ref["cpu_seconds_per_batch"].get<double>() / cpu);
      std::fflush(stdout);
    }
  }
  return 0;
}
