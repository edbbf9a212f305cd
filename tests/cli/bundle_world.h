// A small random-weight binding whose experts are precomputed pools (texts and a few "audio" files),
// shared by the bundle CLI tests and the web page end-to-end test: everything through the binary.
#pragma once
#include <ATen/ATen.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::testkit {


inline const char* kBinding = R"({
  "name": "tiny",
  "experts": {"A": {"modalities": ["audio", "text"], "dim": 24},
              "B": {"modalities": ["image", "text"], "dim": 16},
              "IB": {"modalities": ["audio", "image", "text"], "dim": 32},
              "BB": {"modalities": ["image", "text"], "dim": 20}},
  "backbone": "BB", "heads_per_space": 3, "projector_hidden": 40, "router_hidden": [12, 6],
  "router_inputs": {"audio": ["A"], "image": ["B"], "text": ["A", "B"]}})";

inline const std::vector<std::string> kTexts = {"a dog barking", "rain on a tin roof", "a red car engine", "birds at dawn",
                                         "a violin solo"};

// Everything the tests share, made once: binding config, heads, per-expert text/audio pools, audio files.
struct World {
  std::filesystem::path dir;
  std::vector<std::string> audio_files;
  std::map<std::string, at::Tensor> text_rows, audio_rows;  // expert -> [N, d]
  std::vector<std::string> expert_args;                     // --expert specs for convert

  World() {
    dir = testkit::make_temp_dir("bundle_cli");
    std::ofstream(dir / "binding.json") << kBinding;
    auto config = binding::parse_binding_config(kBinding, "binding");
    tensor_io::write_tensors((dir / "heads.safetensors").string(), pipeline::random_official_heads(config, {.seed = 7}));
    for (int i = 0; i < 3; ++i) {
      audio_files.push_back((dir / ("clip" + std::to_string(i) + ".wav")).string());
      std::ofstream(audio_files.back()) << "not really audio " << i;
    }
    at::Generator g = at::detail::createCPUGenerator(11);
    auto pool = [&](const std::string& name, const std::string& modality, const std::vector<std::string>& paths, int64_t d) {
      at::Tensor rows = at::randn({static_cast<int64_t>(paths.size()), d}, g);
      rows = rows / rows.norm(2, 1, true);
      const std::string file = (dir / (name + "_" + modality + ".safetensors")).string();
      tensor_io::write_tensors(file, {{name, rows}},
                               {{"modality", modality}, {"expert", "test"}, {"key", name}, {"dim", std::to_string(d)},
                                {"paths", nlohmann::json(paths).dump()}});
      expert_args.push_back("--expert");
      expert_args.push_back(name + "=precomputed:" + file + ",modalities=" + modality);
      return rows;
    };
    for (auto& [n, d] : std::vector<std::pair<std::string, int64_t>>{{"A", 24}, {"B", 16}, {"IB", 32}}) {
      text_rows[n] = pool(n, "text", kTexts, d);
      if (n != "B") audio_rows[n] = pool(n, "audio", audio_files, d);
    }
  }

  // What the unified embeddings must be: OmniBindModel over the pools' rows.
  at::Tensor expected(const std::string& modality) const {
    auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint((dir / "heads.safetensors").string()),
                                              binding::parse_binding_config(kBinding, "binding"));
    return model.embed(modality, modality == "text" ? text_rows : audio_rows);
  }

  std::string convert(const std::string& name, const std::vector<std::string>& extra = {}) const {
    const std::string out = (dir / name).string();
    std::vector<std::string> args = {"convert", "--config", (dir / "binding.json").string(), "--heads",
                                     (dir / "heads.safetensors").string(), "--out", out};
    args.insert(args.end(), expert_args.begin(), expert_args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
};

inline std::vector<std::string> text_args() {
  std::vector<std::string> v;
  for (auto& t : kTexts) v.insert(v.end(), {"--text", t});
  return v;
}

using testkit::ServeChild;  // tests/testing/test_support.h

// Builds an index of the corpus texts embedded with a converted bundle: returns {bundle, index dir}.
inline std::pair<std::string, std::string> text_index(const World& w, const std::string& tag) {
  const std::string bundle = w.convert(tag + ".bundle");
  const std::string idx = (w.dir / (tag + ".idx")).string();
  EXPECT_EQ(run_cli({"index", "create", idx, "--dim", "20"}).exit_code, 0);
  const std::string emb = (w.dir / (tag + ".corpus.safetensors")).string();
  std::vector<std::string> args = {"embed", "--model", bundle, "--modality", "text", "--out", emb};
  for (auto& t : text_args()) args.push_back(t);
  auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"index", "add", idx, emb});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return {bundle, idx};
}

inline const World& world() {
  static World w;
  return w;
}

}  // namespace omnibind::testkit
