// Unified embeddings/s per modality for the Large preset at official widths (random weights,
// batch 256), fp32 and bf16, plus checkpoint load time for the 1.9 GB Large head (mmap, warm),
// plus the raw GEMM rate of this machine (1024x2048 @ 2048x2048). Prints one JSON object.
// Baseline: bench/python/fuse_reference.py (the reference's module structure and loops, same shapes),
// run before and after our measurements (the better run counts); both sides report the best single
// batch of --iters after a warm-up.
//   build/bench/bench_fuse [--iters N] [--threads N] [--skip-load] [--python /usr/bin/python3]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"

using namespace omnibind;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Official widths of the Large preset (reference get_config('Large')).
const std::map<std::string, int64_t> kDims = {
    {"CLAP_G", 512},     {"CLAP_M", 512},     {"WAVCAPS_PT", 1024},      {"WAVCAPS_FT_aud", 1024},
    {"WAVCAPS_FT_clo", 1024}, {"DFN_H14", 1024}, {"EVA_E14p", 1024},    {"SigLip_384", 1024},
    {"SigLip_400M_384", 1152}, {"UNI3D_L", 1024}, {"UNI3D_M", 1024},    {"UNI3D_S", 1024},
    {"IB", 1024},        {"EVA_18B", 1536}};
constexpr int64_t kHidden = 2048, kUnified = 1536, kHeads = 7;

void add_head(std::vector<std::pair<std::string, at::Tensor>>& sd, const std::string& p, int64_t in) {
  auto lin = [&](const std::string& n, int64_t o, int64_t i) {
    sd.emplace_back(n + ".weight", at::randn({o, i}) * (1.0 / std::sqrt(double(i))));
    sd.emplace_back(n + ".bias", at::randn({o}) * 0.01);
  };
  auto bn = [&](const std::string& n, int64_t c) {
    sd.emplace_back(n + ".weight", at::rand({c}) + 0.5);
    sd.emplace_back(n + ".bias", at::randn({c}) * 0.1);
    sd.emplace_back(n + ".running_mean", at::randn({c}) * 0.1);
    sd.emplace_back(n + ".running_var", at::rand({c}) + 0.5);
  };
  lin(p + "0", kHidden, in);
  bn(p + "1", kHidden);
  lin(p + "3", kUnified, kHidden);
  bn(p + "4", kUnified);
}

std::vector<std::pair<std::string, at::Tensor>> random_large_state_dict(const binding::BindingConfig& c) {
  std::vector<std::pair<std::string, at::Tensor>> sd;
  auto router = [&](const std::string& p, int64_t in, int64_t out) {
    sd.emplace_back(p + "0.weight", at::randn({512, in}) * 0.03);
    sd.emplace_back(p + "0.bias", at::zeros({512}));
    for (auto [n, ch] : {std::pair<std::string, int64_t>{"1", 512}, {"4", 100}}) {
      sd.emplace_back(p + n + ".weight", at::ones({ch}));
      sd.emplace_back(p + n + ".bias", at::zeros({ch}));
      sd.emplace_back(p + n + ".running_mean", at::zeros({ch}));
      sd.emplace_back(p + n + ".running_var", at::ones({ch}));
    }
    sd.emplace_back(p + "3.weight", at::randn({100, 512}) * 0.05);
    sd.emplace_back(p + "3.bias", at::zeros({100}));
    sd.emplace_back(p + "6.weight", at::randn({out, 100}) * 0.1);
    sd.emplace_back(p + "6.bias", at::zeros({out}));
  };
  for (auto& m : binding::all_modalities()) {
    int64_t in = 0;
    for (auto& n : c.router_inputs.at(m)) in += kDims.at(n);
    router(binding::router_prefix(m), in, static_cast<int64_t>(c.slots(m).size()));
  }
  int64_t k = 0;
  for (auto* e : c.projected_experts())
    for (int64_t h = 0; h < kHeads; ++h, ++k) add_head(sd, "projs." + std::to_string(k) + ".Head2.mlps.", kDims.at(e->name));
  for (int64_t h = 0; h < kHeads; ++h) add_head(sd, "ib_projs." + std::to_string(h) + ".Head2.mlps.", kDims.at("IB"));
  return sd;
}

tensor_io::StateDict as_state_dict(const std::vector<std::pair<std::string, at::Tensor>>& ts) {
  tensor_io::StateDict sd("random-large");
  for (auto& [n, t] : ts) sd.add(n, tensor_io::from_tensor(t));
  return sd;
}

double gemm_gflops(at::ScalarType dtype) {
  at::Tensor a = at::randn({1024, 2048}).to(dtype), b = at::randn({2048, 2048}).to(dtype);
  at::matmul(a, b);
  int iters = 10;
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) at::matmul(a, b);
  return iters * 2.0 * 1024 * 2048 * 2048 / seconds_since(t0) / 1e9;
}

// The reference baseline (same shapes, same machine, same run): bench/python/fuse_reference.py.
nlohmann::json run_reference(const std::string& python, int iters) {
  std::string cmd = python + " " + OMNIBIND_SOURCE_DIR + "/bench/python/fuse_reference.py --iters " + std::to_string(iters) +
                    " --threads " + std::to_string(at::get_num_threads());
  nlohmann::json r = "not run (" + python + " with torch unavailable)";
  if (FILE* p = popen(cmd.c_str(), "r")) {
    std::string text;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) text.append(buf, n);
    if (pclose(p) == 0) {
      try {
        r = nlohmann::json::parse(text);
      } catch (...) {
        r = "unparseable output";
      }
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int iters = 3;
  bool skip_load = false;
  int threads = 0;  // 0 = libtorch's default
  std::string python = "/usr/bin/python3";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (a == "--skip-load") skip_load = true;
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
  }
  if (threads > 0) at::set_num_threads(threads);
  at::manual_seed(0);
  nlohmann::ordered_json out;
  out["threads"] = at::get_num_threads();
  out["gemm_1024x2048x2048_gflops"] = {{"fp32", gemm_gflops(at::kFloat)}, {"bf16", gemm_gflops(at::kBFloat16)}};

  // The reference runs before and after our measurements; the better of its two runs is the
  // baseline (the machine is shared: this favours the reference, never us).
  const nlohmann::json ref_before = run_reference(python, iters);
  auto config = binding::preset_config("large");
  auto tensors = random_large_state_dict(config);
  auto sd = as_state_dict(tensors);
  const int64_t B = 256;
  std::map<std::string, std::map<std::string, at::Tensor>> inputs;
  for (auto& m : binding::all_modalities())
    for (auto& n : config.required_inputs(m)) {
      at::Tensor x = at::randn({B, kDims.at(n)});
      inputs[m][n] = x / x.norm(2, 1, true);
    }
  for (auto precision : {binding::Precision::FP32, binding::Precision::BF16}) {
    const std::string pname = precision == binding::Precision::FP32 ? "fp32" : "bf16";
    auto model = binding::OmniBindModel::load(sd, config, precision);
    for (auto& m : binding::all_modalities()) {
      model.embed(m, inputs[m]);  // warm-up
      double best = 1e30;        // best single batch, like the reference script: robust to load bursts
      for (int i = 0; i < iters; ++i) {
        auto t0 = Clock::now();
        model.embed(m, inputs[m]);
        best = std::min(best, seconds_since(t0));
      }
      out["embeddings_per_s"][pname][m] = B / best;
    }
  }
  if (!skip_load) {
    // The 1.9 GB head as a file: written once, then opened twice (the second open is "warm").
    const std::string path = (std::filesystem::temp_directory_path() / "omnibind_bench_large.safetensors").string();
    tensor_io::write_tensors(path, tensors);
    out["head_file_bytes"] = std::filesystem::file_size(path);
    for (const char* phase : {"first", "warm"}) {
      auto t0 = Clock::now();
      auto loaded = tensor_io::load_checkpoint(path);
      double open_s = seconds_since(t0);
      auto model = binding::OmniBindModel::load(loaded, config);
      out["head_load_s"][phase] = {{"open", open_s}, {"open_and_build", seconds_since(t0)}};
    }
    std::filesystem::remove(path);
  }
  const nlohmann::json ref_after = run_reference(python, iters);
  out["reference_runs"] = {ref_before, ref_after};
  out["reference_pytorch"] = ref_before;
  if (ref_before.is_object() && ref_after.is_object()) {
    for (auto& m : binding::all_modalities())
      out["reference_pytorch"]["embeddings_per_s"][m] = std::max(ref_before["embeddings_per_s"][m].get<double>(),
                                                                 ref_after["embeddings_per_s"][m].get<double>());
  } else if (ref_after.is_object()) {
    out["reference_pytorch"] = ref_after;
  }
  if (out["reference_pytorch"].is_object()) {
    for (auto& m : binding::all_modalities()) {
      double ref = out["reference_pytorch"]["embeddings_per_s"][m].get<double>();
      out["speedup_vs_reference"]["fp32"][m] = out["embeddings_per_s"]["fp32"][m].get<double>() / ref;
      out["speedup_vs_reference"]["bf16"][m] = out["embeddings_per_s"]["bf16"][m].get<double>() / ref;
    }
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
