// A folder of "released files" for `convert --preset large --from DIR` tests, assembled in a temp dir
// from the shared mini fixtures under the released names (symlinks into the temp dir only), in every
// layout the search supports (OmniBind README layout, Hugging Face cache with and without hub/,
// ORG/NAME, NAME), plus random official-layout heads for a binding of the mini widths. The Uni3D
// fixture's width (32) differs from EVA's (48), while a Uni3D space's image/text inputs are EVA's
// embeddings: the world writes Uni3D g_mini variants whose output Linear (trans2embed) gives 48.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::testkit {

inline const char* kLargeMiniBinding = R"({
  "name": "large-mini",
  "experts": {
    "CLAP_G": {"modalities": ["audio", "text"], "dim": 32},
    "CLAP_M": {"modalities": ["audio", "text"], "dim": 32},
    "WAVCAPS_PT": {"modalities": ["audio", "text"], "dim": 48},
    "WAVCAPS_FT_aud": {"modalities": ["audio", "text"], "dim": 48},
    "WAVCAPS_FT_clo": {"modalities": ["audio", "text"], "dim": 48},
    "DFN_H14": {"modalities": ["image", "text"], "dim": 48},
    "EVA_E14p": {"modalities": ["image", "text"], "dim": 48},
    "SigLip_384": {"modalities": ["image", "text"], "dim": 32},
    "SigLip_400M_384": {"modalities": ["image", "text"], "dim": 36},
    "UNI3D_L": {"modalities": ["point", "image", "text"], "dim": 48},
    "UNI3D_M": {"modalities": ["point", "image", "text"], "dim": 48},
    "UNI3D_S": {"modalities": ["point", "image", "text"], "dim": 48},
    "IB": {"modalities": ["audio", "image", "text"], "dim": 32},
    "EVA_18B": {"modalities": ["image", "text"], "dim": 40}},
  "backbone": "EVA_18B", "heads_per_space": 2, "projector_hidden": 16, "router_hidden": [12, 6],
  "router_inputs": {"audio": ["WAVCAPS_PT"], "image": ["SigLip_400M_384"], "point": ["UNI3D_L"],
                    "text": ["WAVCAPS_PT", "SigLip_400M_384", "UNI3D_L"]}})";

struct ReleaseWorld {
  std::filesystem::path dir, from;
  std::string binding;                          // binding JSON file of the mini widths
  std::map<std::string, std::string> configs;   // "<SPACE>.config" -> family config file

  static std::string fx(const std::string& rel) { return shared_path("fixtures/" + rel); }

  // Symlink `target` at from/rel (replacing what is there).
  void place(const std::string& rel, const std::string& target) const {
    const auto p = from / rel;
    std::filesystem::create_directories(p.parent_path());
    std::error_code ec;
    std::filesystem::remove(p, ec);
    std::filesystem::create_symlink(target, p);
  }

  // A Uni3D g_mini whose trans2embed gives 48-d embeddings (seeded).
  void write_uni3d48(const std::string& path, uint64_t seed) const {
    auto st = tensor_io::read_safetensors(fx("uni3d_mini/g_mini/weights.safetensors"));
    std::vector<std::pair<std::string, at::Tensor>> ts;
    at::Generator g = at::detail::createCPUGenerator(seed);
    for (auto& n : st.tensors.names()) {
      at::Tensor t = tensor_io::to_tensor(st.tensors.at(n)).clone();
      if (n == "point_encoder.trans2embed.weight") t = at::randn({48, t.size(1)}, g) / std::sqrt(double(t.size(1)));
      if (n == "point_encoder.trans2embed.bias") t = 0.1 * at::randn({48}, g);
      ts.emplace_back(n, t);
    }
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    tensor_io::write_tensors(path, ts);
  }

  explicit ReleaseWorld(const std::string& tag = "release") {
    dir = make_temp_dir(tag);
    from = dir / "release";
    std::filesystem::create_directories(from);
    binding = (dir / "binding.json").string();
    std::ofstream(binding) << kLargeMiniBinding;
    auto config = binding::parse_binding_config(kLargeMiniBinding, "binding");
    std::filesystem::create_directories(from / "checkpoints/projs");
    tensor_io::write_checkpoint((from / "checkpoints/projs/large.pt").string(),
                                pipeline::random_official_heads(config, {.seed = 5}));
    // OmniBind README layout.
    place("checkpoints/wavcaps/HTSAT-BERT-PT.pt", fx("wavcaps_mini/weights.pt"));
    place("checkpoints/wavcaps/HTSAT-BERT-FT-AudioCaps.pt", fx("wavcaps_mini/weights.pt"));
    place("checkpoints/wavcaps/HTSAT-BERT-FT-Clotho.pt", fx("wavcaps_mini/weights.pt"));
    place("checkpoints/clap/630k_clap_fullset_fusion.pt", fx("clap_mini/fusion/weights.pt"));  // the README's name
    place("checkpoints/clap/music_speech_audioset_epoch_15_esc_89.98.pt", fx("clap_mini/base/weights.pt"));
    place("checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt", fx("eva02_clip_mini/weights.pt"));
    write_uni3d48((from / "checkpoints/uni3d-g/lvis/model.pt").string(), 11);
    write_uni3d48((from / "checkpoints/uni3d-g/mnet40/model.pt").string(), 12);
    write_uni3d48((from / "checkpoints/uni3d-g/scanobjnn/model.pt").string(), 13);
    place(".checkpoints/imagebind_huge.pth", fx("imagebind_mini/weights.pt"));
    place("bpe/bpe_simple_vocab_16e6.txt.gz", shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"));
    // Hugging Face cache (refs/main names the snapshot), with and without hub/.
    place("models--bert-base-uncased/snapshots/0a1b/vocab.txt", fx("wavcaps_mini/vocab_mini.txt"));
    place("hub/models--FacebookAI--roberta-base/snapshots/9c8d/vocab.json", fx("clap_mini/fusion/roberta_vocab.json"));
    place("hub/models--FacebookAI--roberta-base/snapshots/9c8d/merges.txt", fx("clap_mini/fusion/roberta_merges.txt"));
    const std::string dfn = "hub/models--apple--DFN5B-CLIP-ViT-H-14/";
    place(dfn + "snapshots/old1/open_clip_pytorch_model.bin", fx("clap_mini/base/weights.pt"));  // a stale snapshot
    place(dfn + "snapshots/f00d/open_clip_pytorch_model.bin", fx("dfn_clip_mini/weights.pt"));
    std::filesystem::create_directories(from / dfn / "refs");
    std::ofstream(from / dfn / "refs/main") << "f00d";
    // ORG/NAME and NAME layouts.
    place("google/siglip-large-patch16-384/model.safetensors", fx("siglip_mini/large16/weights.safetensors"));
    place("google/siglip-large-patch16-384/spiece.model", fx("siglip_mini/large16/spiece.model"));
    place("siglip-so400m-patch14-384/model.safetensors", fx("siglip_mini/so400m14/weights.safetensors"));
    place("siglip-so400m-patch14-384/spiece.model", fx("siglip_mini/so400m14/spiece.model"));
    // Family configs of the mini widths (--file SPACE.config=...).
    auto uni3d = nlohmann::json::parse(read_file_bytes(fx("uni3d_mini/g_mini/config.json")));
    uni3d["uni3d_args"]["embed_dim"] = 48;
    const std::string uni3d_config = (dir / "uni3d48.json").string();
    std::ofstream(uni3d_config) << uni3d.dump();
    configs = {{"CLAP_G.config", fx("clap_mini/fusion/config.json")},
               {"CLAP_M.config", fx("clap_mini/base/config.json")},
               {"WAVCAPS_PT.config", fx("wavcaps_mini/config.json")},
               {"WAVCAPS_FT_aud.config", fx("wavcaps_mini/config.json")},
               {"WAVCAPS_FT_clo.config", fx("wavcaps_mini/config.json")},
               {"DFN_H14.config", fx("dfn_clip_mini/config.json")},
               {"EVA_E14p.config", fx("eva02_clip_mini/config.json")},
               {"SigLip_384.config", fx("siglip_mini/large16/config.json")},
               {"SigLip_400M_384.config", fx("siglip_mini/so400m14/config.json")},
               {"UNI3D_L.config", uni3d_config},
               {"UNI3D_M.config", uni3d_config},
               {"UNI3D_S.config", uni3d_config},
               {"IB.config", fx("imagebind_mini/config.json")}};
  }

  // `convert --preset large --from DIR --config binding --file SPACE.config=... --out OUT EXTRA...`
  std::vector<std::string> convert_args(const std::string& out, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"convert", "--preset", "large", "--from", from.string(), "--config", binding, "--out", out};
    for (auto& [k, v] : configs) a.insert(a.end(), {"--file", k + "=" + v});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

}  // namespace omnibind::testkit
