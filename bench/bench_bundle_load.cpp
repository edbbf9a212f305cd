// Head load time, Large preset at official widths (random weights, the 1.9 GB head): the unconverted
// official checkpoint (mmap + BatchNorm folding at load, what `fuse` does) vs a converted bundle's
// pre-folded heads (mmap only), same files, same run, warm page cache (each opened once before timing);
// plus ModelBundle::load of the whole bundle (folded heads + 13 small precomputed text experts) and
// the max difference of their unified text embeddings. One JSON object.
//   bench_bundle_load [--repeat 3] [--dir /tmp]
#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"

using namespace omnibind;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Official widths of the Large preset (reference get_config('Large')).
const std::map<std::string, int64_t> kDims = {
    {"CLAP_G", 512},  {"CLAP_M", 512},   {"WAVCAPS_PT", 1024}, {"WAVCAPS_FT_aud", 1024}, {"WAVCAPS_FT_clo", 1024},
    {"DFN_H14", 1024}, {"EVA_E14p", 1024}, {"SigLip_384", 1024}, {"SigLip_400M_384", 1152}, {"UNI3D_L", 1024},
    {"UNI3D_M", 1024}, {"UNI3D_S", 1024}, {"IB", 1024},        {"EVA_18B", 1536}};
}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int repeat = 3;
  fs::path base = fs::temp_directory_path();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--repeat") repeat = std::stoi(argv[i + 1]);
    else if (a == "--dir") base = argv[i + 1];
  }
  const fs::path dir = base / ("omnibind_bench_bundle_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::ordered_json out = {{"repeat", repeat}};

  binding::BindingConfig config = binding::preset_config("large");
  for (auto& e : config.experts) e.dim = kDims.at(e.name);
  const std::string official = (dir / "large_official.safetensors").string();
  {
    auto heads = pipeline::random_official_heads(config, {.heads_per_space = 7, .hidden = 2048, .seed = 0});
    tensor_io::write_tensors(official, heads);
  }
  out["official_file_bytes"] = fs::file_size(official);

  // The bundle: folded heads + one-row text pools for every expert the text path needs.
  const fs::path bundle = dir / "large.bundle";
  {
    auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint(official), binding::preset_config("large"));
    pipeline::BundleManifest m;
    m.preset = "large";
    m.heads_layout = "folded";
    std::vector<pipeline::BundleFile> files = {
        {"heads.safetensors", "", [&](const std::string& p) { tensor_io::write_tensors(p, model.folded_tensors()); }}};
    at::Generator g = at::detail::createCPUGenerator(5);
    for (auto& n : config.required_inputs("text")) {
      const std::string rel = "experts/" + n + ".safetensors";
      at::Tensor row = at::randn({1, kDims.at(n)}, g);
      row = row / row.norm(2, 1, true);
      files.push_back({rel, "", [row, n](const std::string& p) {
                         tensor_io::write_tensors(p, {{n, row}}, {{"modality", "text"}, {"paths", "[\"a dog barking\"]"}});
                       }});
      m.experts.push_back({n, "precomputed", rel, "", "", "", {"text"}});
    }
    pipeline::write_bundle(bundle, m, files);
  }
  out["folded_file_bytes"] = fs::file_size(bundle / "heads.safetensors");

  auto best = [&](auto fn) {
    fn();  // warm the page cache
    double b = 1e9;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = Clock::now();
      fn();
      b = std::min(b, since(t0));
    }
    return b;
  };
  double unconverted = best([&] {
    auto sd = tensor_io::load_checkpoint(official);
    auto m = binding::OmniBindModel::load(sd, binding::preset_config("large"));
  });
  double folded = best([&] {
    auto sd = tensor_io::load_checkpoint((bundle / "heads.safetensors").string());
    auto m = binding::OmniBindModel::load_folded(sd, binding::preset_config("large"));
  });
  double whole = best([&] { auto b = pipeline::ModelBundle::load(bundle); });
  out["unconverted_open_and_build_s"] = unconverted;
  out["folded_open_and_build_s"] = folded;
  out["bundle_load_s"] = whole;
  out["speedup"] = unconverted / folded;

  // Same numbers out of both.
  auto b = pipeline::ModelBundle::load(bundle);
  auto x = b.expert_embeddings(experts::Modality::Text, {experts::MediaInput::from_text("a dog barking")});
  auto ref = binding::OmniBindModel::load(tensor_io::load_checkpoint(official), binding::preset_config("large"));
  out["max_abs_diff_text"] = (ref.embed("text", x) - b.model().embed("text", x)).abs().max().item<float>();
  fs::remove_all(dir);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
