// Uni3D-giant-shaped point encoder (random weights): seconds per cloud in fp32 and bf16 at two
// depths, extrapolated to the real 40 blocks (time = rest + 40 x per-block), against a from-scratch
// PyTorch module of the same shapes (bench/python/uni3d_forward.py) run in the same invocation.
// Full depth is not instantiated: 40 blocks are ~4 GB of fp32 weights per process.
// Times are wall seconds with every compute pool pinned to --threads (libtorch/oneDNN and OpenBLAS;
// process CPU time counted OpenBLAS's spinning idle workers as work). The PyTorch module runs twice:
// with glibc's default heap, and with the heap settings omnibind uses (common/process_memory.h).
//   bench_uni3d_forward [--threads N] [--depths 1,3] [--no-baseline] [--no-bf16] [--no-fp32]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <string>

#include "python_baseline.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/experts/uni3d/uni3d_model.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/tensor_io/torch_bridge.h"

using namespace omnibind;
using namespace omnibind::experts::uni3d;

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

tensor_io::StateDict random_giant(const Uni3dConfig& c) {
  tensor_io::StateDict sd("random");
  at::manual_seed(0);
  auto add = [&](const std::string& k, std::vector<int64_t> shape, double scale, double offset = 0) {
    sd.add("point_encoder." + k, tensor_io::from_tensor(at::randn(shape) * scale + offset));
  };
  const int64_t D = c.width, H = c.mlp_hidden;
  add("cls_token", {1, 1, D}, 0.5);
  add("cls_pos", {1, 1, D}, 0.5);
  auto lin = [&](const std::string& p, int64_t o, int64_t i, bool conv = false, bool bias = true) {
    std::vector<int64_t> s = {o, i};
    if (conv) s.push_back(1);
    add(p + ".weight", s, 1.0 / std::sqrt(static_cast<double>(i)));
    if (bias) add(p + ".bias", {o}, 0.1);
  };
  auto bn = [&](const std::string& p, int64_t ch) {
    add(p + ".weight", {ch}, 0.1, 1.0);
    add(p + ".bias", {ch}, 0.1);
    add(p + ".running_mean", {ch}, 0.1);
    sd.add("point_encoder." + p + ".running_var", tensor_io::from_tensor(at::rand({ch}) + 0.5));
  };
  auto ln = [&](const std::string& p, int64_t d) {
    add(p + ".weight", {d}, 0.1, 1.0);
    add(p + ".bias", {d}, 0.1);
  };
  lin("encoder.first_conv.0", 128, 6, true);
  bn("encoder.first_conv.1", 128);
  lin("encoder.first_conv.3", 256, 128, true);
  lin("encoder.second_conv.0", 512, 512, true);
  bn("encoder.second_conv.1", 512);
  lin("encoder.second_conv.3", c.pc_encoder_dim, 512, true);
  lin("encoder2trans", D, c.pc_encoder_dim);
  lin("pos_embed.0", 128, 3);
  lin("pos_embed.2", D, 128);
  for (int64_t b = 0; b < c.depth; ++b) {
    const std::string p = "visual.blocks." + std::to_string(b) + ".";
    ln(p + "norm1", D);
    ln(p + "norm2", D);
    add(p + "attn.q_bias", {D}, 0.1);
    add(p + "attn.v_bias", {D}, 0.1);
    lin(p + "attn.qkv", 3 * D, D, false, false);
    lin(p + "attn.proj", D, D);
    lin(p + "mlp.fc1", H, D);
    lin(p + "mlp.fc2", D, H);
  }
  ln("visual.fc_norm", D);
  lin("trans2embed", c.embed_dim, D);
  return sd;
}

double seconds_per_cloud(int64_t depth, at::ScalarType dtype, int reps) {
  Uni3dConfig c = uni3d_preset("giant");
  c.depth = depth;
  Uni3dModel m = Uni3dModel::load(random_giant(c), c, dtype);
  at::Tensor feats = at::randn({1, c.num_group, c.group_size, 6}), centers = at::rand({1, c.num_group, 3});
  m.forward(feats, centers);  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = wall_seconds();
    m.forward(feats, centers);
    best = std::min(best, wall_seconds() - t0);
  }
  return best;
}

// The heap settings of common::keep_freed_memory_in_process, for the baseline's "same heap" run.
constexpr const char* kSameHeap = "GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647 ";

nlohmann::json python(int64_t depth, const std::string& dtype, int threads, int reps, bool same_heap) {
  return omnibind::bench::run_python_baseline(
      "uni3d_forward.py", std::to_string(depth) + " " + dtype + " " + std::to_string(threads) + " " + std::to_string(reps),
      threads, same_heap ? kSameHeap : "");
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int threads = 1, reps = 2;
  int64_t d1 = 1, d2 = 3;
  bool baseline = true, bf16 = true, fp32 = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--depths" && i + 1 < argc) std::sscanf(argv[++i], "%ld,%ld", &d1, &d2);
    else if (a == "--no-baseline") baseline = false;
    else if (a == "--no-bf16") bf16 = false;
    else if (a == "--no-fp32") fp32 = false;
  }
  threads = tensor_io::set_compute_threads(threads);
  nlohmann::json out = {{"bench", "uni3d_forward"}, {"shape", "Uni3D-giant: width 1408, 16 heads, MLP 6144, 512x64 groups, embed 1024"},
                        {"threads", threads}, {"depths", {d1, d2}}, {"full_depth", 40}, {"repeats", reps}, {"stat", "best"}};
  auto extrapolate = [&](double t1, double t2) {
    const double block = (t2 - t1) / static_cast<double>(d2 - d1);
    return nlohmann::json{{"at_depths_s", {t1, t2}}, {"per_block_s", block},
                          {"giant_40_blocks_s_per_cloud", t1 + block * (40 - d1)},
                          {"giant_clouds_per_s", 1.0 / (t1 + block * (40 - d1))}};
  };
  std::vector<std::pair<std::string, at::ScalarType>> kinds;
  if (fp32) kinds.push_back({"fp32", at::kFloat});
  if (bf16) kinds.push_back({"bf16", at::kBFloat16});
  for (auto& [name, dt] : kinds) {
    nlohmann::json r = {{"omnibind", extrapolate(seconds_per_cloud(d1, dt, reps), seconds_per_cloud(d2, dt, reps))}};
    if (baseline)
      for (bool same_heap : {false, true}) {
        const std::string key = same_heap ? "pytorch_same_heap" : "pytorch";
        auto a = python(d1, name, threads, reps, same_heap), b = python(d2, name, threads, reps, same_heap);
        if (a.is_null() || b.is_null()) continue;
        r[key] = extrapolate(a["seconds_per_cloud"].get<double>(), b["seconds_per_cloud"].get<double>());
        r["speedup_vs_" + key] = r[key]["giant_40_blocks_s_per_cloud"].get<double>() /
                                 r["omnibind"]["giant_40_blocks_s_per_cloud"].get<double>();
      }
    out[name] = r;
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
