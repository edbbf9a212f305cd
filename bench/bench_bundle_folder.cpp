// Issue 15 item 5: throughput of `embed --model` over a mixed folder, through a Base-shaped bundle at
// mini widths (or any bundle: --bundle DIR), with and without the read/preprocess overlap in the same
// run (pipeline/bundle_stream.h, queue depth 0 vs --depth).
//
// The mini bundle (written to a temporary directory, weights referenced in place, not copied):
//   WAVCAPS_PT / _FT_aud / _FT_clo  wavcaps on fixtures/wavcaps_mini, 48-d (three distinct instances, as
//                                   Base has three checkpoints: .pt, .safetensors, a link to it)
//   EVA_E14p and UNI3D_L image/text eva_clip on fixtures/eva02_clip_mini (one shared instance, 48-d)
//   UNI3D_L point                   uni3d on fixtures/uni3d_mini/g_mini with trans2embed widened to
//                                   48-d (random rows: the mini EVA space is 48-d, the mini Uni3D 32-d)
//   IB                              imagebind on fixtures/imagebind_mini (32-d)
//   heads                           random official-layout heads for Base's binding at those widths
//                                   (7 heads per space, hidden 2048, routers 512/100, unified 64-d)
// Inputs (from shared/data): audio = demo WAVs + FSDD clips, image = demo JPEGs + CIFAR-10 JPEGs,
// point = demo NPYs + ModelNet10 PCDs, text = demo captions + "a photo of a <class>" captions.
// Per modality: first-use build time (lazy experts), then best-of --reps of the stream with depth 0
// (read, preprocess, encode, heads in turn) and with --depth (worker thread), items/s, where the time
// goes (read, each expert run's preprocess = decode + transforms, each expert run's encode, heads,
// waiting for a prepared batch) and the largest difference between the two runs' rows (must be 0).
//   bench_bundle_folder [--bundle DIR] [--shared DIR] [--audio 32] [--image 32] [--point 16] [--text 32]
//       [--batch 8] [--depth 2] [--reps 2] [--threads 2] [--precision fp32] [--modalities audio,image,point,text]
//       [--out FILE.json] [--write-bundle DIR]   (--write-bundle: write the mini bundle to DIR and exit,
//       e.g. to embed through it with `omnibind embed --model DIR`; it references the fixtures in place)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/bundle_stream.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace omnibind;
using experts::MediaInput;
using experts::Modality;

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::vector<std::string> files_in(const fs::path& dir, const std::vector<std::string>& exts, size_t limit) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto& e : fs::recursive_directory_iterator(dir, ec)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (e.is_regular_file() && std::find(exts.begin(), exts.end(), ext) != exts.end()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  // Spread over the folder (classes/speakers), not the first `limit` names.
  if (out.size() > limit && limit > 0) {
    std::vector<std::string> picked;
    for (size_t i = 0; i < limit; ++i) picked.push_back(out[i * out.size() / limit]);
    out = picked;
  }
  return out;
}

// The mini Base-shaped bundle; returns its directory.
fs::path write_mini_bundle(const fs::path& shared, const fs::path& tmp) {
  const fs::path fx = shared / "fixtures";
  auto need = [](const fs::path& p) {
    require(fs::exists(p), p.string() + ": not found (the bench needs the shared fixtures; or pass --bundle DIR)");
    return p.string();
  };
  // Uni3D g_mini with a 48-d output (the space it shares with the mini EVA's image/text).
  const int64_t eva_dim = 48;
  fs::create_directories(tmp / "uni3d48");
  {
    json c = json::parse(read_file_bytes(need(fx / "uni3d_mini/g_mini/config.json")));
    c["uni3d_args"]["embed_dim"] = eva_dim;
    std::ofstream(tmp / "uni3d48/config.json") << c.dump(1);
    auto st = tensor_io::read_safetensors(need(fx / "uni3d_mini/g_mini/weights.safetensors"));
    std::vector<std::pair<std::string, at::Tensor>> w;
    at::Generator g = at::detail::createCPUGenerator(15);
    for (auto& n : st.tensors.names()) {
      at::Tensor t = tensor_io::to_tensor(st.tensors.at(n));
      if (n == "point_encoder.trans2embed.weight") t = at::randn({eva_dim, t.size(1)}, g) / std::sqrt(double(t.size(1)));
      else if (n == "point_encoder.trans2embed.bias") t = at::zeros({eva_dim});
      w.emplace_back(n, t.contiguous());
    }
    tensor_io::write_tensors((tmp / "uni3d48/weights.safetensors").string(), w);
  }
  fs::create_directories(tmp / "wavcaps_clo");
  std::error_code ec;
  fs::create_symlink(need(fx / "wavcaps_mini/weights.safetensors"), tmp / "wavcaps_clo/weights.safetensors", ec);

  binding::BindingConfig config = binding::preset_config("base");
  config.name = "base-mini";
  for (auto& e : config.experts) {
    if (e.name.rfind("WAVCAPS", 0) == 0) e.dim = 48;
    else if (e.name == "EVA_E14p" || e.name == "UNI3D_L") e.dim = eva_dim;
    else if (e.name == "IB") e.dim = 32;
    else if (e.name == "EVA_18B") e.dim = 64;
  }
  pipeline::BundleManifest m;
  m.binding = config;
  m.heads = "heads.safetensors";
  auto entry = [](std::string name, std::string family, std::string weights, std::string cfg, std::string bpe,
                  std::vector<std::string> vocab, std::vector<std::string> modalities) {
    pipeline::BundleExpert e;
    e.name = std::move(name);
    e.family = std::move(family);
    e.weights = std::move(weights);
    e.config = std::move(cfg);
    e.bpe = std::move(bpe);
    e.vocab = std::move(vocab);
    e.modalities = std::move(modalities);
    return e;
  };
  const std::string wc = need(fx / "wavcaps_mini/config.json"), wv = need(fx / "wavcaps_mini/vocab_mini.txt");
  const std::string ew = need(fx / "eva02_clip_mini/weights.safetensors"), ec_ = need(fx / "eva02_clip_mini/config.json");
  const std::string bpe = need(shared / "data/bpe/bpe_simple_vocab_16e6.txt.gz");
  m.experts = {
      entry("WAVCAPS_PT", "wavcaps", need(fx / "wavcaps_mini/weights.pt"), wc, "", {wv}, {}),
      entry("WAVCAPS_FT_aud", "wavcaps", need(fx / "wavcaps_mini/weights.safetensors"), wc, "", {wv}, {}),
      entry("WAVCAPS_FT_clo", "wavcaps", (tmp / "wavcaps_clo/weights.safetensors").string(), wc, "", {wv}, {}),
      entry("EVA_E14p", "eva_clip", ew, ec_, bpe, {}, {}),
      entry("UNI3D_L", "eva_clip", ew, ec_, bpe, {}, {"image", "text"}),
      entry("UNI3D_L", "uni3d", (tmp / "uni3d48/weights.safetensors").string(), (tmp / "uni3d48/config.json").string(), "",
            {}, {"point"}),
      entry("IB", "imagebind", need(fx / "imagebind_mini/weights.safetensors"), need(fx / "imagebind_mini/config.json"),
            need(fx / "imagebind_mini/bpe_simple_vocab_16e6.txt.gz"), {}, {}),
  };
  const fs::path dir = tmp / "base-mini.bundle";
  std::vector<pipeline::BundleFile> files = {{"heads.safetensors", "", [&](const std::string& p) {
                                                tensor_io::write_tensors(p, pipeline::random_official_heads(config, {.seed = 3}));
                                              }}};
  pipeline::write_bundle(dir, m, files, /*overwrite=*/true);
  return dir;
}

json timings_json(const pipeline::StreamTimings& t) {
  json j;
  j["wall_s"] = t.wall_s;
  j["items_per_s"] = t.wall_s > 0 ? double(t.items) / t.wall_s : 0.0;
  j["read_s"] = t.read_s;
  j["preprocess_s"] = t.preprocess_s;
  j["encode_s"] = t.encode_s;
  j["heads_s"] = t.heads_s;
  j["wait_s"] = t.wait_s;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"shared", OMNIBIND_SHARED_DIR}, {"bundle", ""}, {"audio", "32"},
                                          {"image", "32"}, {"point", "16"}, {"text", "32"}, {"batch", "8"},
                                          {"depth", "2"}, {"reps", "2"}, {"threads", "2"}, {"precision", "fp32"},
                                          {"modalities", "audio,image,point,text"}, {"out", ""},
                                          {"write-bundle", ""}};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0 || !a.count(k.substr(2))) {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
    a[k.substr(2)] = argv[i + 1];
  }
  try {
    const int threads = std::stoi(a["threads"]);
    if (threads > 0) at::set_num_threads(threads);
    const fs::path shared = a["shared"], data = shared / "data";
    if (!a["write-bundle"].empty()) {
      const fs::path target = fs::absolute(a["write-bundle"]);
      fs::create_directories(target);
      fs::path written = write_mini_bundle(shared, target);
      std::printf("%s\n", written.string().c_str());
      return 0;
    }
    const fs::path tmp = fs::temp_directory_path() / ("bench_bundle_folder_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    const fs::path bundle_dir = a["bundle"].empty() ? write_mini_bundle(shared, tmp) : fs::path(a["bundle"]);

    auto t0 = std::chrono::steady_clock::now();
    pipeline::BundleLoadOptions lo;
    lo.precision = a["precision"];
    lo.threads = threads;
    auto bundle = pipeline::ModelBundle::load(bundle_dir, lo);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // The mixed folder, per modality.
    std::map<Modality, std::vector<MediaInput>> inputs;
    std::map<Modality, std::vector<std::string>> names;
    auto add_files = [&](Modality m, std::vector<std::string> fs_) {
      for (auto& f : fs_) {
        inputs[m].push_back(MediaInput::from_path(f));
        names[m].push_back(f);
      }
    };
    const size_t na = std::stoul(a["audio"]), ni = std::stoul(a["image"]), np = std::stoul(a["point"]), nt = std::stoul(a["text"]);
    auto demo_audio = files_in(data / "demo", {".wav"}, 0), demo_img = files_in(data / "demo", {".jpg", ".jpeg"}, 0),
         demo_pts = files_in(data / "demo", {".npy"}, 0);
    auto take = [](std::vector<std::string> a_, std::vector<std::string> b_, size_t n) {
      a_.insert(a_.end(), b_.begin(), b_.end());
      if (a_.size() > n) a_.resize(n);
      return a_;
    };
    add_files(Modality::Audio, take(demo_audio, files_in(data / "fsdd", {".wav"}, na), na));
    add_files(Modality::Image, take(demo_img, files_in(data / "cifar10_test_small", {".jpg"}, ni), ni));
    add_files(Modality::Point, take(demo_pts, files_in(data / "modelnet10_test", {".pcd"}, np), np));
    {
      std::vector<std::string> texts;
      std::error_code ec;
      if (fs::exists(data / "demo/captions.json", ec)) {
        json c = json::parse(read_file_bytes((data / "demo/captions.json").string()), nullptr, false);
        if (c.is_object() && c.contains("items") && c["items"].is_array())
          for (auto& item : c["items"])
            for (const char* k : {"text", "source_prompt"})
              if (item.contains(k) && item[k].is_string()) texts.push_back(item[k].get<std::string>());
      }
      const std::vector<std::string> classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                                "ship", "truck", "chair", "table", "bathtub", "bed", "toilet", "sofa"};
      for (size_t i = 0; texts.size() < nt; ++i)
        texts.push_back(std::string(i % 2 ? "the sound of a " : "a photo of a ") + classes[i % classes.size()]);
      texts.resize(nt);
      for (auto& t : texts) {
        inputs[Modality::Text].push_back(MediaInput::from_text(t));
        names[Modality::Text].push_back("");
      }
    }

    json out;
    out["bench"] = "bundle_folder";
    out["machine"] = {{"cpu", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()}};
    out["threads"] = threads;
    out["bundle"] = a["bundle"].empty() ? "base-mini (written by the bench)" : a["bundle"];
    out["binding"] = bundle.name();
    out["precision"] = bundle.precision();
    out["batch"] = std::stoi(a["batch"]);
    out["depth"] = std::stoi(a["depth"]);
    out["load_s"] = load_s;
    const int reps = std::max(1, std::stoi(a["reps"]));
    std::stringstream mods(a["modalities"]);
    std::string mname;
    while (std::getline(mods, mname, ',')) {
      Modality m = experts::parse_modality(mname);
      json r;
      if (!bundle.covers(m) || inputs[m].empty()) {
        r["skipped"] = !bundle.covers(m) ? "the bundle does not embed it" : "no inputs found";
        out["modalities"][mname] = r;
        continue;
      }
      auto tb = std::chrono::steady_clock::now();
      auto runs = bundle.experts_for(m);  // lazy: this modality's experts only
      r["build_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
      r["loaded_experts"] = bundle.loaded_experts();
      r["items"] = inputs[m].size();
      // Warm-up (one batch), then best-of-reps of each mode, alternating.
      pipeline::StreamOptions o;
      o.batch = std::stoul(a["batch"]);
      {
        std::vector<MediaInput> one(inputs[m].begin(), inputs[m].begin() + std::min(o.batch, inputs[m].size()));
        pipeline::embed_all(bundle, m, one, {}, o);
      }
      pipeline::StreamResult best_plain, best_overlap;
      for (int k = 0; k < reps; ++k) {
        o.queue_depth = 0;
        auto p = pipeline::embed_all(bundle, m, inputs[m], names[m], o);
        if (k == 0 || p.timings.wall_s < best_plain.timings.wall_s) best_plain = p;
        o.queue_depth = std::stoul(a["depth"]);
        auto q = pipeline::embed_all(bundle, m, inputs[m], names[m], o);
        if (k == 0 || q.timings.wall_s < best_overlap.timings.wall_s) best_overlap = q;
      }
      r["plain"] = timings_json(best_plain.timings);
      r["overlap"] = timings_json(best_overlap.timings);
      r["speedup"] = best_plain.timings.wall_s / best_overlap.timings.wall_s;
      r["max_abs_diff_rows"] = (best_plain.unified - best_overlap.unified).abs().max().item<double>();
      out["modalities"][mname] = r;
      bundle.release_experts(m);  // as a long-running caller would, between modalities
      std::fprintf(stderr, "%s: %zu items, %.1f items/s plain, %.1f items/s overlapped (x%.2f)\n", mname.c_str(),
                   inputs[m].size(), r["plain"]["items_per_s"].get<double>(), r["overlap"]["items_per_s"].get<double>(),
                   r["speedup"].get<double>());
    }
    const std::string text = out.dump(2);
    std::printf("%s\n", text.c_str());
    if (!a["out"].empty()) std::ofstream(a["out"]) << text << "\n";
    std::error_code ec;
    fs::remove_all(tmp, ec);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_bundle_folder: %s\n", e.what());
    return 2;
  }
  return 0;
}
