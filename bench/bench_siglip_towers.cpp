// SigLIP towers at the released sizes (large16 = SigLip_384, so400m14 = SigLIP_400M_384) with random
// weights (no file needed): embeddings/s per tower and precision, JSON lines. No PyTorch baseline yet
// (issue 14 item 6 wants one in the same run).
//   bench_siglip_towers [--size large16|so400m14|all] [--tower image|text|all] [--precision fp32|bf16|all]
//                       [--threads 2] [--batch 1] [--iters 1]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "omnibind/common/process_memory.h"
#include "omnibind/experts/siglip/siglip_model.h"
#include "omnibind/experts/weight_source.h"

using namespace omnibind::experts::siglip;
using omnibind::experts::WeightSource;

static double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  std::string size = "all", tower = "all", precision = "all";
  int threads = 2, batch = 1, iters = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--size") size = v;
    else if (k == "--tower") tower = v;
    else if (k == "--precision") precision = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--iters") iters = std::stoi(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  for (std::string s : {"large16", "so400m14"}) {
    if (size != "all" && size != s) continue;
    const auto config = builtin_config(s);
    for (std::string prec : {"fp32", "bf16"}) {
      if (precision != "all" && precision != prec) continue;
      auto t0 = std::chrono::steady_clock::now();
      auto model = SiglipModel::load(config, WeightSource::random(prec == "bf16" ? at::kBFloat16 : at::kFloat, 1));
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (std::string t : {"image", "text"}) {
        if (tower != "all" && tower != t) continue;
        at::manual_seed(0);
        at::Tensor input = t == "image" ? at::rand({batch, 3, config.image_size, config.image_size}) * 2 - 1
                                        : at::randint(0, config.vocab_size, {batch, config.context}, at::kLong);
        auto run = [&] { return t == "image" ? model.image_embeds(input) : model.text_embeds(input); };
        auto t1 = std::chrono::steady_clock::now();
        at::Tensor out;
        for (int i = 0; i < iters; ++i) out = run();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::printf("{\"size\":\"%s\",\"key\":\"%s\",\"tower\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"batch\":%d,"
                    "\"load_s\":%.2f,\"seconds\":%.3f,\"items_per_s\":%.4f,\"out_norm\":%.6f,\"peak_rss_mb\":%.0f}\n",
                    s.c_str(), config.key.c_str(), t.c_str(), prec.c_str(), threads, batch, load_s, sec,
                    batch * iters / sec, out.norm(2, {-1}).mean().item<double>(),
                    peak_rss_mb());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
