// DFN5B-CLIP-ViT-H-14 (expert open_clip, OmniBind DFN_H14) image tower at the real size with random
// weights (WeightSource::random, no file needed): width 1280, 16 heads of 80, MLP 5120, 257 tokens,
// pre-norm blocks, QuickGELU. Seconds per image in fp32 and bf16 at two depths, extrapolated to the
// real 32 blocks (time = rest + 32 x per-block), as bench_eva_clip does. "bf16" is bf16 weight
// storage multiplied by experts/mixed_matmul.h's rule (fp32 GEMMs over upcast weights on CPUs
// without native bf16). JSON on stdout.
// With --baseline, a same-shape PyTorch module (bench/python/open_clip_blocks.py: open_clip 2.24.0's
// VisionTransformer ops, nn.MultiheadAttention with packed in_proj; needs Debian's python3-torch) runs
// in the same invocation with the same threads, depths and batch, extrapolated the same way.
//   bench_open_clip [--threads N] [--depths 1,2] [--reps 2] [--batch 1] [--baseline] [--no-fp32] [--no-bf16]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "python_baseline.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/experts/open_clip/open_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/compute_threads.h"

using namespace omnibind;
using namespace omnibind::experts::open_clip;

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

OpenClipModel model(int64_t depth, at::ScalarType dtype) {
  OpenClipConfig c = builtin_config("dfn5b-h14");
  c.vision_layers = depth;
  c.text_layers = 1;  // the text tower is not timed
  return OpenClipModel::load(experts::WeightSource::random(dtype, 7), c);
}

double seconds_per_batch(const OpenClipModel& m, int64_t batch, int reps) {
  c10::InferenceMode guard;
  at::manual_seed(0);
  at::Tensor px = at::randn({batch, 3, m.config.image_size, m.config.image_size});
  m.encode_image(px);  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = wall_seconds();
    m.encode_image(px);
    best = std::min(best, wall_seconds() - t0);
  }
  return best;
}

nlohmann::json python(int64_t depth, const std::string& dtype, int threads, int reps, int64_t batch) {
  return omnibind::bench::run_python_baseline("open_clip_blocks.py",
                                              std::to_string(depth) + " " + dtype + " " + std::to_string(threads) + " " +
                                                  std::to_string(reps) + " " + std::to_string(batch),
                                              threads);
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();
  int threads = 1, reps = 2;
  int64_t d1 = 1, d2 = 2, batch = 1;
  bool baseline = false, fp32 = true, bf16 = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--depths" && i + 1 < argc) std::sscanf(argv[++i], "%ld,%ld", &d1, &d2);
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stol(argv[++i]);
    else if (a == "--baseline") baseline = true;
    else if (a == "--no-fp32") fp32 = false;
    else if (a == "--no-bf16") bf16 = false;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  threads = tensor_io::set_compute_threads(threads);
  const OpenClipConfig real = builtin_config("dfn5b-h14");
  nlohmann::json out = {{"bench", "open_clip_vision"},
                        {"shape", "DFN5B-CLIP-ViT-H-14 vision: width 1280, 16 heads x 80, MLP 5120, 257 tokens, pre-norm"},
                        {"threads", threads},
                        {"batch", batch},
                        {"depths", {d1, d2}},
                        {"full_depth", real.vision_layers},
                        {"repeats", reps},
                        {"stat", "best wall seconds per batch"}};
  const double full = static_cast<double>(real.vision_layers);
  auto extrapolate = [&](double t1, double t2) {
    const double block = (t2 - t1) / static_cast<double>(d2 - d1);
    const double total = t1 + block * (full - static_cast<double>(d1));
    return nlohmann::json{{"at_depths_s", {t1, t2}}, {"per_block_s", block},
                          {"full_32_blocks_s_per_batch", total}, {"images_per_s", static_cast<double>(batch) / total}};
  };
  std::vector<std::pair<std::string, at::ScalarType>> kinds;
  if (fp32) kinds.push_back({"fp32", at::kFloat});
  if (bf16) kinds.push_back({"bf16", at::kBFloat16});
  for (auto& [name, dt] : kinds) {
    const double t1 = seconds_per_batch(model(d1, dt), batch, reps), t2 = seconds_per_batch(model(d2, dt), batch, reps);
    nlohmann::json r = {{"omnibind", extrapolate(t1, t2)}};
    if (baseline) {
      auto a = python(d1, name, threads, reps, batch), b = python(d2, name, threads, reps, batch);
      if (!a.is_null() && !b.is_null()) {
        r["pytorch"] = extrapolate(a["seconds_per_batch"].get<double>(), b["seconds_per_batch"].get<double>());
        r["speedup_vs_pytorch"] = r["pytorch"]["full_32_blocks_s_per_batch"].get<double>() /
                                  r["omnibind"]["full_32_blocks_s_per_batch"].get<double>();
      } else {
        r["pytorch"] = "unavailable (needs /usr/bin/python3 with torch: apt-get install python3-torch)";
      }
    }
    out[name] = r;
    std::cerr << name << ": " << out[name].dump() << std::endl;
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
