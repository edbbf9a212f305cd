// ImageBind towers at the `huge` config with random weights (no file needed): embeddings/s per
// tower and precision, printed as JSON lines. The PyTorch baseline is bench/python/imagebind_towers.py
// (same shapes, same batch, same threads).
//   bench_imagebind_towers [--tower vision|audio|text|all] [--precision fp32|bf16|all]
//                          [--threads 2] [--warmup 0] [--iters 1]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <cstdio>
#include <cstring>
#include <string>

#include "omnibind/common/process_memory.h"
#include "omnibind/experts/imagebind/imagebind_model.h"
#include "omnibind/experts/weight_source.h"

using namespace omnibind::experts::imagebind;
using omnibind::experts::WeightSource;

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  std::string tower = "all", precision = "all";
  int threads = 2, warmup = 0, iters = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--tower") tower = v;
    else if (k == "--precision") precision = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else if (k == "--iters") iters = std::stoi(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  const auto config = builtin_config("huge");
  for (std::string prec : {"fp32", "bf16"}) {
    if (precision != "all" && precision != prec) continue;
    auto t0 = std::chrono::steady_clock::now();
    unsigned which = tower == "vision"  ? ImageBindModel::kVision
                     : tower == "audio" ? ImageBindModel::kAudio
                     : tower == "text"  ? ImageBindModel::kText
                                        : ImageBindModel::kAll;
    auto model = ImageBindModel::load(config, WeightSource::random(prec == "bf16" ? at::kBFloat16 : at::kFloat, 1), which);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::string t : {"vision", "audio", "text"}) {
      if (tower != "all" && tower != t) continue;
      at::manual_seed(0);
      int64_t batch = 0;
      std::function<at::Tensor()> run;
      at::Tensor input;
      if (t == "vision") {
        batch = 8;
        input = at::randn({batch, 3, 224, 224});
        run = [&] { return model.vision_embed(input); };
      } else if (t == "audio") {
        batch = 8;  // audio files, 3 clips each
        input = at::randn({batch, 3, 1, 128, 204});
        run = [&] { return model.audio_embed(input); };
      } else {
        batch = 32;
        input = at::randint(1, 49406, {batch, 77}, at::kLong);
        input.select(1, 0).fill_(49406);
        input.select(1, 20).fill_(49407);  // EOT in the middle, like a short caption
        run = [&] { return model.text_embed(input); };
      }
      for (int i = 0; i < warmup; ++i) run();
      // Wall time, and process CPU time (all threads): on a shared machine the CPU time is the
      // steadier number; wall time includes waiting for the cores.
      auto s = std::chrono::steady_clock::now();
      std::clock_t c0 = std::clock();
      for (int i = 0; i < iters; ++i) run();
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count() / iters;
      double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / iters;
      std::printf(
          "{\"impl\": \"omnibind-cpp\", \"tower\": \"%s\", \"precision\": \"%s\", \"config\": \"huge\", \"batch\": %lld, "
          "\"threads\": %d, \"warmup\": %d, \"iters\": %d, \"seconds_per_batch\": %.3f, \"embeddings_per_s\": %.3f, "
          "\"cpu_seconds_per_batch\": %.3f, \"embeddings_per_cpu_s\": %.3f, \"random_init_s\": %.1f}\n",
          t.c_str(), prec.c_str(), static_cast<long long>(batch), threads, warmup, iters, sec, batch / sec, cpu,
          batch / cpu, load_s);
      std::fflush(stdout);
    }
  }
  return 0;
}
