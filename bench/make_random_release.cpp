// Writes every file OmniBind-Base or -Large needs, at the released widths (or at widths from
// per-family config JSONs), with random weights, plus random official-layout heads and a
// bundle.json with absolute paths: for measuring memory/time of the real presets without the
// 30-50 GB download (bench/bench_release_memory.sh), and for testing bundles end to end.
//
//   make_random_release --preset base|large --out DIR [--seed N] [--precision fp32|bf16]
//                       [--config FAMILY=FILE]... [--vocab FAMILY=FILE]... [--per-modality]
//                       [--unified-dim D] [--heads-hidden H] [--keep-existing] [--dry-run]
//
// Key lists and shapes: each family's model is loaded from a *recording* WeightSource
// (WeightSource::recording: it records what the strict loader asks for and returns untouched
// memory), plus the tensors strict loading requires although the forward never reads them
// (audio_text::require_present's names). Uni3D's loader reads a StateDict directly, so its keys
// are listed here after uni3d_model.cpp and the released layout (shared/fixtures/uni3d_mini/g_mini).
// Checkpoints are written as safetensors under the released file names (.pt/.pth): every loader
// detects the format from the first bytes, not from the extension. Dtypes: EVA02-E 16-bit
// (bfloat16, 10.1 GB like the released file), everything else float32. Values are deterministic
// (seed, file, tensor index) and generated/written one tensor at a time, so memory stays at the
// largest tensor (~250 MB), not the file (Large is ~40 GB on disk).
// Random values are N(0, 0.02) weights etc. (WeightSource::random_values): embeddings are
// meaningless, compute and memory are those of the real models.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/clap/clap_config.h"
#include "omnibind/experts/clap/clap_model.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/imagebind/imagebind_config.h"
#include "omnibind/experts/imagebind/imagebind_model.h"
#include "omnibind/experts/open_clip/open_clip_config.h"
#include "omnibind/experts/open_clip/open_clip_model.h"
#include "omnibind/experts/siglip/siglip_config.h"
#include "omnibind/experts/siglip/siglip_model.h"
#include "omnibind/experts/uni3d/uni3d_config.h"
#include "omnibind/experts/wavcaps/wavcaps_config.h"
#include "omnibind/experts/wavcaps/wavcaps_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/pipeline/bundle_manifest.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace fs = std::filesystem;
using omnibind::InputError;
using omnibind::require;
using omnibind::experts::WeightSource;
using Kind = WeightSource::Kind;
using Log = std::vector<WeightSource::Recorded>;

namespace {

#ifndef OMNIBIND_SHARED_DIR
#define OMNIBIND_SHARED_DIR ""
#endif

enum class Fill { Random, Arange, Zero };

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  Kind kind = Kind::Weight;
  Fill fill = Fill::Random;
  int64_t bytes() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n * static_cast<int64_t>(c10::elementSize(dtype));
  }
};

struct CheckpointFile {
  std::string rel;  // released file name, relative to the output folder
  std::vector<Tensor> tensors;
};

std::shared_ptr<Log> new_log() { return std::make_shared<Log>(); }

// Recorded requests -> tensors to write. get_raw() with a shape is an integer buffer (position ids:
// arange); get_raw(name, {}) comes from require_present, whose real shapes `present` gives.
std::vector<Tensor> from_log(const Log& log, const std::map<std::string, std::vector<int64_t>>& present = {}) {
  std::vector<Tensor> out;
  std::map<std::string, bool> seen;
  for (const auto& r : log) {
    if (seen[r.name]) continue;  // asked twice (shared weights): stored once
    seen[r.name] = true;
    Tensor t{r.name, r.shape, r.dtype, r.kind, Fill::Random};
    if (r.raw && r.shape.empty()) {
      auto it = present.find(r.name);
      t.dtype = at::kFloat;
      if (it != present.end()) t.shape = it->second;
      else t.kind = Kind::Scalar;  // 0-d (temperatures, logit scales)
    } else if (r.raw && r.dtype == at::kLong) {
      t.fill = Fill::Arange;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// HTSAT's unused tscam/classifier head, as the reference stores it (require_present's names).
void htsat_head_shapes(std::map<std::string, std::vector<int64_t>>& m, const std::string& p,
                       const omnibind::experts::htsat::HtsatConfig& c) {
  const int64_t F = c.num_features(), K = c.num_classes;
  const int64_t sf = c.spec_size / (int64_t{1} << (c.num_layers() - 1)) / c.patch_stride / c.freq_ratio();
  m[p + "tscam_conv.weight"] = {K, F, sf, 3};
  m[p + "tscam_conv.bias"] = {K};
  m[p + "head.weight"] = {K, K};  // HTSAT's head is Linear(num_classes, num_classes) after tscam_conv
  m[p + "head.bias"] = {K};
}

std::vector<Tensor> wavcaps_tensors(const omnibind::experts::wavcaps::WavCapsConfig& c) {
  auto log = new_log();
  omnibind::experts::wavcaps::WavCapsModel::load(WeightSource::recording(at::kFloat, log), c, at::kFloat);
  std::map<std::string, std::vector<int64_t>> present;
  htsat_head_shapes(present, "audio_encoder.audio_enc.", c.htsat);
  present["temp"] = {1};  // as in shared/fixtures/wavcaps_mini
  return from_log(*log, present);
}

std::vector<Tensor> clap_tensors(const omnibind::experts::clap::ClapConfig& c) {
  auto log = new_log();
  // LAION-CLAP checkpoints are DDP state dicts: every key has "module.".
  omnibind::experts::clap::ClapModel::load(WeightSource::recording(at::kFloat, log).sub("module."), c, at::kFloat);
  std::map<std::string, std::vector<int64_t>> present;
  htsat_head_shapes(present, "module.audio_branch.", c.htsat);
  const int64_t J = c.embed_dim();
  for (const char* t : {"module.audio_transform.sequential.", "module.text_transform.sequential."}) {
    present[std::string(t) + "0.weight"] = {J, J};
    present[std::string(t) + "0.bias"] = {J};
    present[std::string(t) + "3.weight"] = {J, J};
    present[std::string(t) + "3.bias"] = {J};
  }
  const int64_t bins = c.audio.window_size / 2 + 1;
  present["module.audio_branch.spectrogram_extractor.stft.conv_real.weight"] = {bins, 1, c.audio.window_size};
  present["module.audio_branch.spectrogram_extractor.stft.conv_imag.weight"] = {bins, 1, c.audio.window_size};
  present["module.audio_branch.logmel_extractor.melW"] = {bins, c.audio.mel_bins};
  return from_log(*log, present);
}

std::vector<Tensor> eva_clip_tensors(const omnibind::experts::eva_clip::EvaClipConfig& c) {
  auto log = new_log();
  omnibind::experts::eva_clip::EvaClipModel::load(c, WeightSource::recording(at::kBFloat16, log), "text.",
                                                  "logit_scale");
  auto out = from_log(*log);
  // Cross-check with the checkpoint reader's own list (require_complete): same names.
  std::map<std::string, bool> have;
  for (auto& t : out) have[t.name] = true;
  for (const auto& k : omnibind::experts::eva_clip::expected_keys(c))
    require(have.count(k) != 0, "make_random_release: EVA-CLIP key '" + k + "' is expected but the model never asks for it");
  require(out.size() == omnibind::experts::eva_clip::expected_keys(c).size(),
          "make_random_release: EVA-CLIP model asks for keys expected_keys() does not list");
  return out;
}

std::vector<Tensor> imagebind_tensors(const omnibind::experts::imagebind::ImageBindConfig& c) {
  auto log = new_log();
  omnibind::experts::imagebind::ImageBindModel::load(c, WeightSource::recording(at::kFloat, log));
  return from_log(*log);
}

std::vector<Tensor> open_clip_tensors(const omnibind::experts::open_clip::OpenClipConfig& c) {
  auto log = new_log();
  omnibind::experts::open_clip::OpenClipModel::load(WeightSource::recording(at::kFloat, log), c);
  return from_log(*log);
}

std::vector<Tensor> siglip_tensors(const omnibind::experts::siglip::SiglipConfig& c) {
  auto log = new_log();
  omnibind::experts::siglip::SiglipModel::load(c, WeightSource::recording(at::kFloat, log));
  return from_log(*log);
}

// Uni3D: what Uni3dModel::load reads (point_encoder.*), plus what the released model.pt also holds
// (the timm image-side leftovers and logit_scale; see shared/fixtures/uni3d_mini/g_mini).
std::vector<Tensor> uni3d_tensors(const omnibind::experts::uni3d::Uni3dConfig& c) {
  using omnibind::experts::uni3d::MlpKind;
  std::vector<Tensor> out;
  const std::string P = "point_encoder.";
  auto add = [&](const std::string& n, std::vector<int64_t> shape, Kind k = Kind::Weight) {
    out.push_back(Tensor{P + n, std::move(shape), at::kFloat, k, Fill::Random});
  };
  auto linear = [&](const std::string& p, int64_t o, int64_t i, bool bias = true, bool conv = false) {
    std::vector<int64_t> s = {o, i};
    if (conv) s.push_back(1);
    add(p + ".weight", s);
    if (bias) add(p + ".bias", {o}, Kind::Bias);
  };
  auto ln = [&](const std::string& p, int64_t d) {
    add(p + ".weight", {d}, Kind::NormWeight);
    add(p + ".bias", {d}, Kind::Bias);
  };
  auto bn = [&](const std::string& p, int64_t d) {
    ln(p, d);
    add(p + ".running_mean", {d}, Kind::Bias);
    add(p + ".running_var", {d}, Kind::NormWeight);
    out.push_back(Tensor{P + p + ".num_batches_tracked", {}, at::kLong, Kind::Weight, Fill::Zero});
  };
  const int64_t D = c.width, C = c.pc_encoder_dim, E = c.embed_dim, H = c.mlp_hidden;
  out.push_back(Tensor{"logit_scale", {}, at::kFloat, Kind::Scalar, Fill::Random});
  add("cls_token", {1, 1, D}, Kind::Embedding);
  add("cls_pos", {1, 1, D}, Kind::Embedding);
  linear("encoder.first_conv.0", 128, 6, true, true);
  bn("encoder.first_conv.1", 128);
  linear("encoder.first_conv.3", 256, 128, true, true);
  linear("encoder.second_conv.0", 512, 512, true, true);
  bn("encoder.second_conv.1", 512);
  linear("encoder.second_conv.3", C, 512, true, true);
  linear("encoder2trans", D, C);
  linear("trans2embed", E, D);
  linear("pos_embed.0", 128, 3);
  linear("pos_embed.2", D, 128);
  // Image-side leftovers of the timm model (never read): giant is a 560-pixel model with a 1000-class head.
  const bool giant = c.pc_model.rfind("eva_giant", 0) == 0;
  const int64_t grid = giant ? 40 : 16;
  add("visual.cls_token", {1, 1, D}, Kind::Embedding);
  add("visual.pos_embed", {1, grid * grid + 1, D}, Kind::Embedding);
  linear("visual.patch_embed.proj", D, 3 * 14 * 14);
  out[out.size() - 2].shape = {D, 3, 14, 14};
  const bool sub_ln = c.mlp == MlpKind::SwiGlu;
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string p = "visual.blocks." + std::to_string(i) + ".";
    ln(p + "norm1", D);
    if (c.qkv_fused) {
      add(p + "attn.q_bias", {D}, Kind::Bias);
      add(p + "attn.v_bias", {D}, Kind::Bias);
      linear(p + "attn.qkv", 3 * D, D, false);
    } else {
      linear(p + "attn.q_proj", D, D);
      linear(p + "attn.k_proj", D, D, false);
      linear(p + "attn.v_proj", D, D);
    }
    if (sub_ln) ln(p + "attn.norm", D);
    linear(p + "attn.proj", D, D);
    ln(p + "norm2", D);
    switch (c.mlp) {
      case MlpKind::Gelu:
        linear(p + "mlp.fc1", H, D);
        linear(p + "mlp.fc2", D, H);
        break;
      case MlpKind::Glu:
        linear(p + "mlp.fc1", 2 * H, D);
        linear(p + "mlp.fc2", D, H);
        break;
      case MlpKind::SwiGlu:
        linear(p + "mlp.fc1_g", H, D);
        linear(p + "mlp.fc1_x", H, D);
        ln(p + "mlp.norm", H);
        linear(p + "mlp.fc2", D, H);
        break;
    }
  }
  ln("visual.fc_norm", D);  // timm Eva global_pool='avg' (Uni3D): norm = Identity, fc_norm = LayerNorm
  if (giant) linear("visual.head", 1000, D);
  return out;
}

// Streams a safetensors file: header first (all shapes are known), then each tensor generated,
// cast and written in turn. Atomic (temp file + rename).
void write_streamed(const fs::path& path, const std::vector<Tensor>& tensors, uint64_t seed) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  int64_t offset = 0;
  for (const auto& t : tensors) {
    const char* dt = t.dtype == at::kBFloat16 ? "BF16" : t.dtype == at::kLong ? "I64" : "F32";
    require(t.dtype == at::kBFloat16 || t.dtype == at::kLong || t.dtype == at::kFloat,
            "make_random_release: unsupported dtype for " + t.name);
    header[t.name] = {{"dtype", dt}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  header["__metadata__"] = {{"format", "pt"}, {"generator", "omnibind bench/make_random_release (random weights)"}};
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".partial";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  require(f != nullptr, tmp.string() + ": cannot write");
  std::vector<char> buf(8 << 20);
  std::setvbuf(f, buf.data(), _IOFBF, buf.size());
  const uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    at::Tensor v;
    switch (t.fill) {
      case Fill::Random: v = WeightSource::random_values(t.shape, t.kind, seed, i).to(t.dtype); break;
      case Fill::Zero: v = at::zeros(t.shape, at::TensorOptions().dtype(t.dtype)); break;
      case Fill::Arange: {
        const int64_t last = t.shape.empty() ? 1 : t.shape.back();
        v = at::arange(last, at::TensorOptions().dtype(at::kLong)).expand(t.shape).to(t.dtype).contiguous();
        break;
      }
    }
    v = v.contiguous();
    const size_t bytes = static_cast<size_t>(t.bytes());
    ok = std::fwrite(v.data_ptr(), 1, bytes, f) == bytes;
  }
  ok = std::fclose(f) == 0 && ok;
  require(ok, tmp.string() + ": write failed (disk full?)");
  fs::rename(tmp, path);
}

int64_t file_size_of(const std::vector<Tensor>& tensors) {
  int64_t offset = 0;
  for (const auto& t : tensors) offset += t.bytes();
  return offset;  // data only (the header is small)
}

struct Args {
  std::string preset = "base", out, precision = "fp32";
  uint64_t seed = 1;
  std::map<std::string, std::string> config, vocab;
  bool keep_existing = false, dry_run = false, per_modality = false;
  int64_t unified_dim = 1536, heads_hidden = 0;  // EVA-CLIP-18B's width; 0 = the preset's projector_hidden
  std::string shared = OMNIBIND_SHARED_DIR;
};

std::pair<std::string, std::string> split_kv(const std::string& s, const std::string& flag) {
  auto eq = s.find('=');
  require(eq != std::string::npos && eq > 0, flag + " expects FAMILY=FILE, got '" + s + "'");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

std::string abs_path(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

int run(const Args& a) {
  namespace ex = omnibind::experts;
  const bool large = a.preset == "large";
  require(a.preset == "base" || large, "--preset must be base or large");
  require(!a.out.empty(), "--out DIR is required");
  const fs::path out = fs::absolute(a.out);
  const std::string shared = a.shared.empty() ? std::string() : fs::absolute(a.shared).lexically_normal().string();
  auto cfg = [&](const std::string& fam) {
    auto it = a.config.find(fam);
    return it == a.config.end() ? std::string() : abs_path(it->second);
  };
  auto vocab = [&](const std::string& fam, const std::string& dflt) {
    auto it = a.vocab.find(fam);
    return it != a.vocab.end() ? abs_path(it->second) : shared.empty() ? std::string() : shared + "/" + dflt;
  };
  for (auto& [k, v] : a.config)
    require(k == "wavcaps" || k == "clap_fusion" || k == "clap_base" || k == "eva_clip" || k == "uni3d" ||
                k == "imagebind" || k == "open_clip" || k == "siglip_large16" || k == "siglip_so400m14",
            "--config " + k + "=...: unknown family (wavcaps, clap_fusion, clap_base, eva_clip, uni3d, imagebind, "
            "open_clip, siglip_large16, siglip_so400m14)");

  const std::string bpe = vocab("bpe", "data/bpe/bpe_simple_vocab_16e6.txt.gz");
  std::vector<CheckpointFile> files;
  omnibind::pipeline::BundleManifest manifest;
  manifest.preset = a.preset;
  manifest.heads_layout = "official";
  manifest.precision = a.precision;
  omnibind::binding::BindingConfig binding = omnibind::binding::preset_config(a.preset);
  std::map<std::string, int64_t> dims;
  auto entry = [&](const std::string& name, const std::string& family, const std::string& rel, const std::string& size,
                   const std::string& config, std::vector<std::string> modalities = {},
                   std::vector<std::string> vocab_files = {}, const std::string& bpe_file = "") {
    omnibind::pipeline::BundleExpert e;
    e.name = name;
    e.family = family;
    e.weights = (out / rel).string();
    e.size = size;
    e.config = config;
    e.modalities = std::move(modalities);
    e.vocab = std::move(vocab_files);
    e.bpe = bpe_file;
    manifest.experts.push_back(std::move(e));
  };

  // --- audio-text: WavCaps x3 (Base and Large), CLAP_G/M (Large)
  {
    const std::string c = cfg("wavcaps");
    auto config = c.empty() ? ex::wavcaps::wavcaps_released_config() : ex::wavcaps::wavcaps_config_from_json_file(c);
    auto tensors = wavcaps_tensors(config);
    const std::string v = vocab("wavcaps", "fixtures/wavcaps_mini/bert-base-uncased-vocab.txt");
    const std::vector<std::tuple<std::string, std::string, std::string>> w = {
        {"WAVCAPS_PT", "pt", "checkpoints/wavcaps/HTSAT-BERT-PT.pt"},
        {"WAVCAPS_FT_aud", "ft_aud", "checkpoints/wavcaps/HTSAT-BERT-FT-AudioCaps.pt"},
        {"WAVCAPS_FT_clo", "ft_clo", "checkpoints/wavcaps/HTSAT-BERT-FT-Clotho.pt"}};
    for (auto& [name, size, rel] : w) {
      files.push_back({rel, tensors});
      entry(name, "wavcaps", rel, size, c, {}, {v});
      dims[name] = config.embed_size();
    }
  }
  if (large) {
    const std::vector<std::string> rv = {vocab("roberta_vocab", "fixtures/clap_mini/base/roberta_vocab.json"),
                                         vocab("roberta_merges", "fixtures/clap_mini/base/roberta_merges.txt")};
    for (auto [name, size, fam, rel] : std::vector<std::array<std::string, 4>>{
             {"CLAP_G", "fusion", "clap_fusion", "checkpoints/clap/630k-fusion-best.pt"},
             {"CLAP_M", "base", "clap_base", "checkpoints/clap/music_speech_audioset_epoch_15_esc_89.98.pt"}}) {
      const std::string c = cfg(fam);
      auto config = c.empty() ? ex::clap::clap_released_config(size) : ex::clap::clap_config_from_json_file(c);
      files.push_back({rel, clap_tensors(config)});
      entry(name, "clap", rel, size, c, {}, rv);
      dims[name] = config.embed_dim();
    }
  }
  // --- EVA02-CLIP-bigE-14-plus: EVA_E14p, and the image/text side of every Uni3D space
  const std::string eva_rel = "EVA02_CLIP_E_psz14_plus_s9B.pt";
  {
    const std::string c = cfg("eva_clip");
    auto config = c.empty() ? ex::eva_clip::builtin_config("") : ex::eva_clip::load_config(c);
    files.push_back({eva_rel, eva_clip_tensors(config)});
    entry("EVA_E14p", "eva_clip", eva_rel, "", c, {}, {}, bpe);
    dims["EVA_E14p"] = config.embed_dim;
  }
  // --- Uni3D giant (lvis / mnet40 / scanobjnn)
  {
    const std::string c = cfg("uni3d");
    auto config = c.empty() ? ex::uni3d::uni3d_preset("giant") : ex::uni3d::uni3d_config_from_json_file(c);
    auto tensors = uni3d_tensors(config);
    std::vector<std::pair<std::string, std::string>> u = {{"UNI3D_L", "uni3d-g/lvis/model.pt"}};
    if (large) {
      u.push_back({"UNI3D_M", "uni3d-g/mnet40/model.pt"});
      u.push_back({"UNI3D_S", "uni3d-g/scanobjnn/model.pt"});
    }
    for (auto& [name, rel] : u) {
      files.push_back({rel, tensors});
      entry(name, "uni3d", rel, c.empty() ? "giant" : "", c, {"point"});
      // The Uni3D spaces' image and text inputs are EVA02-E's embeddings (one loaded EVA serves all).
      entry(name, "eva_clip", eva_rel, "", cfg("eva_clip"), {"image", "text"}, {}, bpe);
      require(config.embed_dim == dims["EVA_E14p"],
              name + ": the Uni3D config's embed_dim " + std::to_string(config.embed_dim) +
                  " differs from EVA-CLIP's " + std::to_string(dims["EVA_E14p"]) +
                  " (the Uni3D spaces take EVA-CLIP's image/text embeddings: give a uni3d --config with embed_dim " +
                  std::to_string(dims["EVA_E14p"]) + ")");
      dims[name] = config.embed_dim;
    }
  }
  // --- image-text of Large: DFN_H14, SigLip_384, SigLip_400M_384
  if (large) {
    const std::string c = cfg("open_clip");
    auto config = c.empty() ? ex::open_clip::builtin_config("dfn5b-h14") : ex::open_clip::load_config(c);
    const std::string rel = "DFN5B-CLIP-ViT-H-14/open_clip_pytorch_model.bin";
    files.push_back({rel, open_clip_tensors(config)});
    entry("DFN_H14", "open_clip", rel, c.empty() ? "dfn5b-h14" : "", c, {}, {}, bpe);
    dims["DFN_H14"] = config.embed_dim;
    const std::string sp = vocab("spiece", "fixtures/siglip_mini/large16/spiece.model");
    for (auto [name, size, rel] : std::vector<std::array<std::string, 3>>{
             {"SigLip_384", "large16", "siglip-large-patch16-384/model.safetensors"},
             {"SigLip_400M_384", "so400m14", "siglip-so400m-patch14-384/model.safetensors"}}) {
      const std::string sc = cfg("siglip_" + size);
      auto config = sc.empty() ? ex::siglip::builtin_config(size) : ex::siglip::load_config(sc);
      files.push_back({rel, siglip_tensors(config)});
      entry(name, "siglip", rel, sc.empty() ? size : "", sc, {}, {sp});
      dims[name] = config.dim();
    }
  }
  // --- ImageBind huge
  {
    const std::string c = cfg("imagebind");
    auto config = c.empty() ? ex::imagebind::builtin_config("huge") : ex::imagebind::load_config(c);
    files.push_back({"imagebind_huge.pth", imagebind_tensors(config)});
    entry("IB", "imagebind", "imagebind_huge.pth", c.empty() ? "huge" : "", c, {}, {}, bpe);
    dims["IB"] = config.out_dim;
  }

  // --- heads: official layout, widths of the experts above; unified dim 1536 (EVA-CLIP-18B's)
  dims["EVA_18B"] = a.unified_dim;
  for (auto& e : binding.experts) {
    auto it = dims.find(e.name);
    require(it != dims.end(), "make_random_release: no width for " + e.name);
    e.dim = it->second;
  }
  const std::string heads_rel = "checkpoints/projs/" + a.preset + ".pt";
  manifest.heads = (out / heads_rel).string();

  int64_t total = 0;
  for (auto& f : files) total += file_size_of(f.tensors);
  std::printf("%s: %zu checkpoint files, %.2f GB of weights (+ heads) -> %s\n", a.preset.c_str(), files.size(),
              total / 1e9, out.c_str());
  if (a.dry_run) {
    for (auto& f : files) std::printf("  %-60s %8.3f GB  %zu tensors\n", f.rel.c_str(), file_size_of(f.tensors) / 1e9, f.tensors.size());
    return 0;
  }
  const fs::space_info space = fs::space(out.parent_path().empty() ? fs::current_path() : out.parent_path());
  require(a.keep_existing || static_cast<int64_t>(space.available) > total + (int64_t{1} << 30),
          out.string() + ": needs " + std::to_string(total / 1000000000) + " GB, only " +
              std::to_string(space.available / 1000000000) + " GB free");
  fs::create_directories(out);
  uint64_t file_seed = a.seed * 7919;
  for (auto& f : files) {
    ++file_seed;
    const fs::path p = out / f.rel;
    const int64_t want = file_size_of(f.tensors);
    std::error_code ec;
    if (a.keep_existing && fs::is_regular_file(p, ec) && static_cast<int64_t>(fs::file_size(p)) > want) {
      std::printf("  %-60s kept (exists)\n", f.rel.c_str());
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    write_streamed(p, f.tensors, file_seed);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  %-60s %8.3f GB  %5zu tensors  %6.1f s\n", f.rel.c_str(), want / 1e9, f.tensors.size(), s);
    std::fflush(stdout);
  }
  {
    const fs::path hp = out / heads_rel;
    fs::create_directories(hp.parent_path());
    omnibind::pipeline::RandomHeadsOptions ho;
    ho.seed = a.seed;
    ho.hidden = a.heads_hidden;
    omnibind::tensor_io::write_checkpoint(hp.string(), omnibind::pipeline::random_official_heads(binding, ho));
    std::printf("  %-60s %8.3f GB  (random official heads)\n", heads_rel.c_str(), fs::file_size(hp) / 1e9);
  }
  std::ofstream(out / "bundle.json") << omnibind::pipeline::bundle_manifest_to_json(manifest) << "\n";
  std::printf("wrote %s\n", (out / "bundle.json").c_str());
  if (a.per_modality) {
    // One bundle per modality holding only the experts that modality needs (same files, absolute paths):
    // what a bundle that loads experts per modality would hold in memory, measurable with today's loader.
    const std::map<std::string, std::vector<std::string>> covers = {
        {"wavcaps", {"audio", "text"}}, {"clap", {"audio", "text"}},     {"eva_clip", {"image", "text"}},
        {"uni3d", {"point"}},           {"open_clip", {"image", "text"}}, {"siglip", {"image", "text"}},
        {"imagebind", {"audio", "image", "text"}}};
    for (const std::string m : {"audio", "image", "point", "text"}) {
      auto sub = manifest;
      sub.experts.clear();
      for (const auto& e : manifest.experts) {
        const auto& fam = covers.at(e.family);
        const auto& mods = e.modalities.empty() ? fam : e.modalities;
        if (std::find(mods.begin(), mods.end(), m) == mods.end()) continue;
        auto k = e;
        k.modalities = {m};
        sub.experts.push_back(std::move(k));
      }
      const fs::path d = out / "by_modality" / m;
      fs::create_directories(d);
      std::ofstream(d / "bundle.json") << omnibind::pipeline::bundle_manifest_to_json(sub) << "\n";
      std::printf("wrote %s (%zu expert entries)\n", (d / "bundle.json").c_str(), sub.experts.size());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string s = argv[i];
      auto next = [&]() -> std::string {
        require(i + 1 < argc, s + " needs a value");
        return argv[++i];
      };
      if (s == "--preset") a.preset = next();
      else if (s == "--out") a.out = next();
      else if (s == "--seed") a.seed = std::stoull(next());
      else if (s == "--precision") a.precision = next();
      else if (s == "--shared") a.shared = next();
      else if (s == "--config") a.config.insert(split_kv(next(), "--config"));
      else if (s == "--vocab") a.vocab.insert(split_kv(next(), "--vocab"));
      else if (s == "--keep-existing") a.keep_existing = true;
      else if (s == "--unified-dim") a.unified_dim = std::stoll(next());
      else if (s == "--heads-hidden") a.heads_hidden = std::stoll(next());
      else if (s == "--dry-run") a.dry_run = true;
      else if (s == "--per-modality") a.per_modality = true;
      else if (s == "-h" || s == "--help") {
        std::printf(
            "make_random_release --preset base|large --out DIR [--seed N] [--precision fp32|bf16]\n"
            "  [--config FAMILY=FILE]...  per-family widths (wavcaps, clap_fusion, clap_base, eva_clip, uni3d,\n"
            "                             imagebind, open_clip, siglip_large16, siglip_so400m14; default: released)\n"
            "  [--vocab KIND=FILE]...     tokenizer files (bpe, wavcaps, roberta_vocab, roberta_merges, spiece;\n"
            "                             default: from --shared, %s)\n"
            "  [--unified-dim D] [--heads-hidden H]  heads widths (default 1536, the preset's; smaller for tests)\n"
            "  [--per-modality]          also DIR/by_modality/<m>/bundle.json: only the experts modality m needs\n"
            "  [--shared DIR] [--keep-existing] [--dry-run]\n",
            OMNIBIND_SHARED_DIR);
        return 0;
      } else throw InputError("unknown argument '" + s + "' (see --help)");
    }
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_random_release: %s\n", e.what());
    return 2;
  }
}
