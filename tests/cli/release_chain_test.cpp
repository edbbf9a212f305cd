// Issue 15 item 4, "the whole chain is the reference's": a model bundle built with `omnibind convert`
// from the shared mini fixtures of every expert of OmniBind-Large (WavCaps x3, CLAP fusion and base,
// EVA02-E, DFN, SigLIP-384 and -400M, Uni3D x3, ImageBind), bound by a Large-shaped custom binding at
// the fixtures' widths with random heads in the official key layout. For every modality the fixtures'
// real input files (and texts) go through `embed --model B --save-experts` in a shuffled order, and
//  - the unified rows equal each expert's own `embed --expert` followed by `fuse` on those outputs
//    (max abs <= 1e-6), the expert rows inside equal the experts' own rows (max abs <= 1e-6);
//  - the expert rows inside equal the fixtures' expected (reference) embeddings for the inputs each
//    fixture has (cosine >= 0.99999 per row, matched by file content / text, so rows must follow the
//    command line's order).
// Everything goes through the built binary; the bundle is made once and shared by the tests.
//
// Issue 20 item 4: the same chain for a Full-shaped bundle (binding::preset_config("full") at the
// fixtures' widths): Large's experts plus EVA_18B (eva_clip_18b on the eva_clip_18b_mini fixture, the
// backbone, whose image and text embeddings enter the unified space as
// normalize(0.1 * IB heads + 0.9 * EVA_18B)), all four modalities (ReleaseChainFull.*).
//
// The binding is binding::preset_config("large") with the widths the fixtures' expected embeddings have.
// In OmniBind the Uni3D spaces also take image and text, as EVA_E14p's embeddings (Uni3D.emb_images /
// emb_texts call the EVA02-E object), which works because Uni3D and EVA02-E both give 1024-d vectors;
// the bundle then has an eva_clip entry (EVA02's files, image+text) under each UNI3D name. When the
// fixtures' widths differ (uni3d_mini g_mini: 32, eva02_clip_mini: 48) one space's heads cannot take
// both, so UNI3D_L/M/S bind point only and the text router reads EVA_E14p where Large reads UNI3D_L's
// text embedding (in the reference the same vector: EVA02-E's text embedding).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace omnibind;
using testkit::run_cli;

std::string fixture(const std::string& rel) { return testkit::shared_path("fixtures/" + rel); }

// One bound space and the fixture it comes from.
struct ExpertFx {
  std::string name, family, dir;  // binding name, expert family, folder under fixtures/
  std::string weights, config;    // files
  std::vector<std::pair<std::string, std::string>> tokenizer;  // {"bpe" | "vocab", file}
  std::vector<std::string> modalities;
};

at::Tensor read_key(const std::string& file, const std::string& key) {
  auto st = tensor_io::read_safetensors(file);
  if (!st.tensors.contains(key)) {
    ADD_FAILURE() << file << " has no tensor '" << key << "'";
    return at::Tensor();
  }
  return tensor_io::to_tensor(st.tensors.at(key)).to(at::kFloat).clone();
}

json read_json(const std::string& file) { return json::parse(read_file_bytes(file)); }

std::string base(const std::string& p) { return fs::path(p).filename().string(); }

// The reference's embedding of each input the fixture has, by input id (a file's name or a text):
// the expected tensors and their row order as each fixture's README/inputs.json gives them.
std::map<std::string, at::Tensor> reference_rows(const ExpertFx& e, const std::string& modality) {
  std::map<std::string, at::Tensor> out;
  const std::string dir = e.dir + "/";
  const json in = e.family == "uni3d" ? json() : read_json(fixture(dir + "inputs.json"));
  auto by_list = [&](const char* list, const char* field, const std::string& file, const std::string& key, bool text) {
    at::Tensor t = read_key(fixture(dir + file), key);
    const auto& items = in.at(list);
    EXPECT_EQ(t.size(0), static_cast<int64_t>(items.size())) << e.dir << " " << key;
    for (size_t i = 0; i < items.size() && static_cast<int64_t>(i) < t.size(0); ++i) {
      const std::string id = items[i].at(field).get<std::string>();
      out[text ? id : base(id)] = t[static_cast<int64_t>(i)];
    }
  };
  if (e.family == "wavcaps") {
    if (modality == "audio") by_list("audio", "file", "expected_model.safetensors", "model/audio_embeds", false);
    if (modality == "text") by_list("texts", "text", "expected_model.safetensors", "model/text_embeds", true);
  } else if (e.family == "clap") {
    if (modality == "audio") by_list("audio", "file", "expected_model.safetensors", "audio/omnibind", false);
    if (modality == "text") by_list("texts", "text", "expected_model.safetensors", "text/omnibind", true);
  } else if (e.family == "eva_clip_18b") {
    // OmniBind's EVA_18B tokenizes at 42 (the fixture's text_ctx42 rows).
    if (modality == "image") by_list("images", "file", "expected_model.safetensors", "image/omnibind_embedding", false);
    if (modality == "text") by_list("texts", "text", "expected_model.safetensors", "text_ctx42/omnibind_embedding", true);
  } else if (e.family == "eva_clip" || e.family == "open_clip" || e.family == "siglip") {
    if (modality == "image") by_list("images", "file", "expected_model.safetensors", "image/omnibind_embedding", false);
    if (modality == "text") by_list("texts", "text", "expected_model.safetensors", "text/omnibind_embedding", true);
  } else if (e.family == "imagebind") {
    // Rows follow inputs.json's *_batch_order (file names; text rows by text name).
    const char* order = modality == "audio" ? "audio_batch_order" : modality == "image" ? "image_batch_order" : "text_batch_order";
    const std::string key = (modality == "image" ? std::string("vision") : modality) + "/embedding";
    at::Tensor t = read_key(fixture(dir + "expected_model.safetensors"), key);
    std::map<std::string, std::string> text_of;
    for (auto& x : in.at("texts")) text_of[x.at("name").get<std::string>()] = x.at("text").get<std::string>();
    const auto& rows = in.at(order);
    EXPECT_EQ(t.size(0), static_cast<int64_t>(rows.size())) << key;
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < t.size(0); ++i) {
      const std::string id = rows[i].get<std::string>();
      out[modality == "text" ? text_of.at(id) : id] = t[static_cast<int64_t>(i)];
    }
  } else if (e.family == "uni3d" && modality == "point") {
    // expected_g_mini: one "<input>/embedding_l2" per input: the file's stem, "mn10_<stem>" for the
    // ModelNet10 clouds (README, "Inputs").
    const auto st = tensor_io::read_safetensors(fixture(dir + "expected_g_mini.safetensors"));
    for (auto& f : fs::directory_iterator(fixture(dir + "inputs"))) {
      const std::string stem = f.path().stem().string();
      for (const std::string key : {stem + "/embedding_l2", "mn10_" + stem + "/embedding_l2"})
        if (st.tensors.contains(key)) {
          out[base(f.path().string())] = tensor_io::to_tensor(st.tensors.at(key)).to(at::kFloat).reshape({-1}).clone();
          break;
        }
    }
  }
  return out;
}

// Everything the tests share, made once: binding, heads, the experts' files and the bundle.
struct Chain {
  std::string preset;  // "large" | "full"
  fs::path dir;
  std::string binding, heads, bundle;
  binding::BindingConfig config;
  std::vector<ExpertFx> experts;
  bool uni3d_takes_eva = false;  // fixtures' Uni3D and EVA02 of one width: Large's Uni3D image/text slots
  std::string convert_error;

  explicit Chain(const std::string& preset_name) : preset(preset_name) {
    const bool full = preset == "full";
    dir = testkit::make_temp_dir("release_chain_" + preset);
    // The three WavCaps and the three Uni3D spaces load one fixture checkpoint each, placed under the
    // released file names (distinct files, so three instances load, as with the real checkpoints).
    auto link = [&](const std::string& src, const std::string& rel) {
      const fs::path p = dir / rel;
      fs::create_directories(p.parent_path());
      std::error_code ec;
      fs::create_hard_link(src, p, ec);
      if (ec) fs::copy_file(src, p);
      return p.string();
    };
    const std::string wc = "wavcaps_mini", bpe = testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz");
    const std::vector<std::string> audio_text = {"audio", "text"}, image_text = {"image", "text"};
    for (auto [name, file] : std::vector<std::pair<std::string, std::string>>{
             {"WAVCAPS_PT", "HTSAT-BERT-PT.pt"}, {"WAVCAPS_FT_aud", "HTSAT-BERT-FT-AudioCaps.pt"},
             {"WAVCAPS_FT_clo", "HTSAT-BERT-FT-Clotho.pt"}})
      experts.push_back({name, "wavcaps", wc, link(fixture(wc + "/weights.pt"), "wavcaps/" + file),
                         fixture(wc + "/config.json"), {{"vocab", fixture(wc + "/vocab_mini.txt")}}, audio_text});
    for (auto [name, kind] : std::vector<std::pair<std::string, std::string>>{{"CLAP_G", "fusion"}, {"CLAP_M", "base"}}) {
      const std::string d = "clap_mini/" + kind;
      experts.push_back({name, "clap", d, fixture(d + "/weights.pt"), fixture(d + "/config.json"),
                         {{"vocab", fixture(d + "/roberta_vocab.json")}, {"vocab", fixture(d + "/roberta_merges.txt")}},
                         audio_text});
    }
    experts.push_back({"EVA_E14p", "eva_clip", "eva02_clip_mini", fixture("eva02_clip_mini/weights.pt"),
                       fixture("eva02_clip_mini/config.json"), {{"bpe", bpe}}, image_text});
    experts.push_back({"DFN_H14", "open_clip", "dfn_clip_mini", fixture("dfn_clip_mini/weights.pt"),
                       fixture("dfn_clip_mini/config.json"), {{"bpe", bpe}}, image_text});
    for (auto [name, kind] : std::vector<std::pair<std::string, std::string>>{{"SigLip_384", "large16"},
                                                                              {"SigLip_400M_384", "so400m14"}}) {
      const std::string d = "siglip_mini/" + kind;
      experts.push_back({name, "siglip", d, fixture(d + "/weights.safetensors"), fixture(d + "/config.json"),
                         {{"vocab", fixture(d + "/spiece.model")}}, image_text});
    }
    for (auto [name, task] : std::vector<std::pair<std::string, std::string>>{
             {"UNI3D_L", "lvis"}, {"UNI3D_M", "mnet40"}, {"UNI3D_S", "scanobjnn"}})
      experts.push_back({name, "uni3d", "uni3d_mini", link(fixture("uni3d_mini/g_mini/weights.pt"), "uni3d-g/" + task + "/model.pt"),
                         fixture("uni3d_mini/g_mini/config.json"), {}, {"point"}});
    experts.push_back({"IB", "imagebind", "imagebind_mini", fixture("imagebind_mini/weights.pt"),
                       fixture("imagebind_mini/config.json"), {{"bpe", fixture("imagebind_mini/bpe_simple_vocab_16e6.txt.gz")}},
                       {"audio", "image", "text"}});
    if (full)  // OmniBind-Full runs EVA-CLIP-18B for image and text (the backbone space)
      experts.push_back({"EVA_18B", "eva_clip_18b", "eva_clip_18b_mini", fixture("eva_clip_18b_mini/weights.safetensors"),
                         fixture("eva_clip_18b_mini/config.json"), {{"bpe", bpe}}, image_text});

    // The binding: Large's (Full's) experts, slots and router inputs (binding::preset_config("large")) at the
    // fixtures' widths, read from their expected embeddings.
    std::map<std::string, int64_t> dims;
    for (auto& e : experts) {
      const std::string m = e.family == "uni3d" ? "point" : "text";
      const auto rows = reference_rows(e, m);
      if (!rows.empty()) dims[e.name] = rows.begin()->second.numel();
    }
    if (!full) dims["EVA_18B"] = 40;  // the backbone: only the unified width (Large never runs EVA-CLIP-18B)
    uni3d_takes_eva = dims.count("UNI3D_L") && dims.count("EVA_E14p") && dims["UNI3D_L"] == dims["EVA_E14p"];
    config = binding::preset_config(preset);
    config.name = preset + "_mini";
    config.projector_hidden = 64;
    config.router_hidden = {32, 12};
    for (auto& s : config.experts) {
      s.dim = dims.count(s.name) ? dims[s.name] : 0;
      if (s.name.rfind("UNI3D_", 0) == 0 && !uni3d_takes_eva) {
        s.modalities = {"point"};
        s.extra_inputs.clear();  // Full's Uni3D spaces also read image (EVA_E14p's) for the router
      }
    }
    if (uni3d_takes_eva) {
      // As in OmniBind: the Uni3D spaces' image and text inputs are EVA_E14p's embeddings.
      const ExpertFx eva = *find("EVA_E14p", "image");
      for (const std::string n : {"UNI3D_L", "UNI3D_M", "UNI3D_S"}) {
        experts.push_back(eva);
        experts.back().name = n;
      }
    } else {
      for (auto& n : config.router_inputs.at("text"))
        if (n == "UNI3D_L") n = "EVA_E14p";  // UNI3D_L's text embedding is EVA_E14p's in the reference
    }
    binding = (dir / "binding.json").string();
    std::ofstream(binding) << binding::binding_config_to_json(config);
    config = binding::load_binding_config(binding);
    heads = (dir / "heads.pt").string();  // torch.save zip, the reference's state-dict keys
    tensor_io::write_checkpoint(heads, pipeline::random_official_heads(config, {.seed = 15}));

    bundle = (dir / (preset + "_mini.bundle")).string();
    auto r = run_cli(convert_args(experts, bundle));
    if (r.exit_code != 0) convert_error = "convert failed (" + std::to_string(r.exit_code) + "): " + r.err;
  }

  std::vector<std::string> convert_args(const std::vector<ExpertFx>& list, const std::string& out) const {
    std::vector<std::string> args = {"convert", "--config", binding, "--heads", heads, "--out", out};
    for (auto& e : list) {
      std::string spec = e.name + "=" + e.family + ":" + e.weights + ",config=" + e.config;
      for (auto& [k, f] : e.tokenizer) spec += "," + k + "=" + f;
      std::string mods;
      for (auto& m : e.modalities) mods += (mods.empty() ? "" : "+") + m;
      args.insert(args.end(), {"--expert", spec + ",modalities=" + mods});
    }
    return args;
  }

  // The entry feeding space `name` for `modality` (a name may have one entry per modality).
  const ExpertFx* find(const std::string& name, const std::string& modality) const {
    for (auto& e : experts)
      if (e.name == name && std::find(e.modalities.begin(), e.modalities.end(), modality) != e.modalities.end()) return &e;
    return nullptr;
  }

  // `embed --expert` of one space: args for the given inputs (files, or texts for "text").
  std::vector<std::string> expert_args(const ExpertFx& e, const std::string& modality, const std::string& out) const {
    std::vector<std::string> a = {"embed", "--expert", e.family, "--weights", e.weights, "--config", e.config};
    // Tokenizer files before the other options: --vocab takes every value up to the next option.
    for (auto& [k, f] : e.tokenizer) a.insert(a.end(), {"--" + k, f});
    a.insert(a.end(), {"--precision", "fp32", "--modality", modality, "--out", out});
    return a;
  }
};

const Chain& chain(const std::string& preset = "large") {
  static std::map<std::string, std::unique_ptr<Chain>> chains;
  auto& c = chains[preset];
  if (!c) c = std::make_unique<Chain>(preset);
  return *c;
}

void add_inputs(std::vector<std::string>& args, const std::string& modality, const std::vector<std::string>& inputs) {
  for (auto& x : inputs) {
    if (modality == "text") args.push_back("--text");
    args.push_back(x);
  }
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes()) return 1e30;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

double cosine(const at::Tensor& a, const at::Tensor& b) {
  auto x = a.to(at::kDouble).reshape({-1}), y = b.to(at::kDouble).reshape({-1});
  return ((x * y).sum() / (x.norm() * y.norm())).item<double>();
}

// The whole check for one modality; `inputs` are files (or texts) in the order given to every call.
void check_chain(const std::string& modality, const std::vector<std::string>& inputs, const std::string& preset = "large") {
  const Chain& c = chain(preset);
  ASSERT_TRUE(c.convert_error.empty()) << c.convert_error;
  const fs::path dir = c.dir / modality;
  fs::create_directories(dir);
  const int64_t n = static_cast<int64_t>(inputs.size());

  // 1. The bundle: unified rows and the expert rows it computed on the way.
  const std::string x_file = (dir / "bundle.safetensors").string();
  // fp32 named everywhere: the check must not depend on a machine's default precision.
  std::vector<std::string> args = {"embed",    "--model", c.bundle,       "--modality", modality,
                                   "--precision", "fp32", "--save-experts", "--out",      x_file};
  add_inputs(args, modality, inputs);
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const at::Tensor unified = read_key(x_file, modality);
  ASSERT_TRUE(unified.defined());
  ASSERT_EQ(unified.sizes(), (std::vector<int64_t>{n, c.config.find(c.config.backbone)->dim}));
  EXPECT_LT((unified.norm(2, {1}) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(json::parse(tensor_io::read_safetensors(x_file).metadata.at("paths")).get<std::vector<std::string>>(), inputs);

  // 2. Each needed expert on its own, then fuse on those rows.
  const std::vector<std::string> names = c.config.required_inputs(modality);
  ASSERT_FALSE(names.empty());
  std::vector<std::pair<std::string, at::Tensor>> fuse_in;
  for (auto& name : names) {
    const ExpertFx* e = c.find(name, modality);
    ASSERT_NE(e, nullptr) << name;
    const std::string y_file = (dir / (name + ".safetensors")).string();
    auto a = c.expert_args(*e, modality, y_file);
    add_inputs(a, modality, inputs);
    r = run_cli(a);
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    auto y = tensor_io::read_safetensors(y_file);
    ASSERT_EQ(y.tensors.size(), 1u) << y_file;
    const at::Tensor own = tensor_io::to_tensor(y.tensors.at(y.tensors.names().front())).to(at::kFloat).clone();
    const at::Tensor inside = read_key(x_file, modality + "/" + name);
    const double d = max_abs(inside, own);
    std::printf("[chain] %-5s %-16s bundle's expert rows vs embed --expert: max abs %.3g\n", modality.c_str(), name.c_str(), d);
    EXPECT_LE(d, 1e-6) << modality << "/" << name;
    fuse_in.emplace_back(modality + "/" + name, own);
  }
  const std::string f_in = (dir / "experts.safetensors").string(), f_out = (dir / "fused.safetensors").string();
  tensor_io::write_tensors(f_in, fuse_in);
  r = run_cli({"fuse", "--head", c.heads, "--config", c.binding, "--precision", "fp32", "--in", f_in, "--out", f_out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double du = max_abs(unified, read_key(f_out, modality));
  std::printf("[chain] %-5s unified rows: bundle vs embed --expert + fuse: max abs %.3g\n", modality.c_str(), du);
  EXPECT_LE(du, 1e-6) << modality;

  // 3. The expert rows inside against the reference, for every input its fixture has.
  for (auto& name : names) {
    const ExpertFx* e = c.find(name, modality);
    const auto want = reference_rows(*e, modality);
    const at::Tensor inside = read_key(x_file, modality + "/" + name);
    ASSERT_TRUE(inside.defined());
    int checked = 0;
    double worst = 1, worst_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      const std::string& in = inputs[static_cast<size_t>(i)];
      auto it = want.find(modality == "text" ? in : base(in));
      if (it == want.end()) continue;
      if (modality != "text") {  // the fixture's own file (inputs come from several fixtures)
        const std::string own = fixture(e->dir + "/inputs/" + base(in));
        if (!fs::is_regular_file(own) || read_file_bytes(in) != read_file_bytes(own)) continue;
      }
      ASSERT_EQ(inside.size(1), it->second.numel()) << name;
      const double cs = cosine(inside[i], it->second);
      EXPECT_GE(cs, 0.99999) << modality << "/" << name << " row " << i << " (" << in << ")";
      worst = std::min(worst, cs);
      // For the report: the reference row normalised (ImageBind's carry its logit scale).
      worst_abs = std::max(worst_abs, max_abs(inside[i], it->second / it->second.norm()));
      ++checked;
    }
    std::printf("[chain] %-5s %-16s vs the reference (%s): %d/%lld rows, 1 - min cosine %.3g, max abs %.3g\n",
                modality.c_str(), name.c_str(), e->dir.c_str(), checked, static_cast<long long>(n), 1 - worst, worst_abs);
    EXPECT_GE(checked, 1) << modality << "/" << name << ": no input of its fixture was embedded";
  }
}

// Every input of `modality` the chain's fixtures hold (files once each, by content; texts once each),
// in an order that is no fixture's: a row that does not follow the command line fails its reference
// check. Left out: clips over 10 s (CLAP crops them at random in the reference: its fixtures record the
// draws, which a bundle cannot take), clips under 25 ms (shorter than one of ImageBind's kaldi fbank
// frames: ImageBind refuses them, so an audio call of the whole binding does) and texts over 40 bytes
// (SigLIP refuses texts of more than 64 tokens: the reference does not truncate).
std::vector<std::string> fixture_inputs(const std::string& modality, const std::string& preset = "large") {
  const Chain& c = chain(preset);
  std::vector<std::string> out, seen_dirs;
  std::vector<std::string> contents;
  auto add_file = [&](const std::string& path) {
    if (!fs::is_regular_file(path)) return;
    std::string bytes = read_file_bytes(path);
    if (std::find(contents.begin(), contents.end(), bytes) != contents.end()) return;
    contents.push_back(std::move(bytes));
    out.push_back(path);
  };
  auto add_text = [&](const std::string& t) {
    if (t.size() <= 40 && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  };
  auto usable_clip = [](double frames, double rate) { return frames <= 10.0 * rate && frames >= 0.025 * rate; };
  for (auto& e : c.experts) {
    if (std::find(e.modalities.begin(), e.modalities.end(), modality) == e.modalities.end()) continue;
    if (std::find(seen_dirs.begin(), seen_dirs.end(), e.dir) != seen_dirs.end()) continue;
    seen_dirs.push_back(e.dir);
    const std::string dir = "fixtures/" + e.dir + "/";
    if (e.family == "uni3d") {
      std::vector<std::string> clouds;
      for (auto& f : fs::directory_iterator(testkit::shared_path(dir + "inputs"))) clouds.push_back(f.path().string());
      std::sort(clouds.begin(), clouds.end());
      for (auto& f : clouds) add_file(f);
      continue;
    }
    const json in = read_json(testkit::shared_path(dir + "inputs.json"));
    if (modality == "text") {
      for (auto& t : in.at("texts")) add_text(t.at("text").get<std::string>());
    } else if (e.family == "imagebind") {
      for (auto& f : in.at(modality == "audio" ? "audio_batch_order" : "image_batch_order")) {
        const std::string name = f.get<std::string>();
        const json& wav = in.at("files").at(name).value("wav", json::object());
        if (modality == "audio" && !usable_clip(wav.at("frames").get<double>(), wav.at("sample_rate").get<double>())) continue;
        add_file(testkit::shared_path(dir + "inputs/" + name));
      }
    } else if (modality == "audio") {  // wavcaps, clap
      for (auto& f : in.at("audio")) {
        const double rate = f.contains("samplerate") ? f.at("samplerate").get<double>() : f.at("sample_rate").get<double>();
        if (!usable_clip(f.at("frames").get<double>(), rate)) continue;
        add_file(testkit::shared_path(dir + "inputs/" + base(f.at("file").get<std::string>())));
      }
    } else {  // eva_clip, eva_clip_18b, open_clip, siglip images
      for (auto& f : in.at("images")) add_file(testkit::shared_path(dir + "inputs/" + base(f.at("file").get<std::string>())));
    }
  }
  std::mt19937 rng(15);
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

}  // namespace

TEST(ReleaseChain, Audio) {
  OMNIBIND_REQUIRE_SHARED();
  check_chain("audio", fixture_inputs("audio"));
}

TEST(ReleaseChain, Image) {
  OMNIBIND_REQUIRE_SHARED();
  check_chain("image", fixture_inputs("image"));
}

TEST(ReleaseChain, Point) {
  OMNIBIND_REQUIRE_SHARED();
  check_chain("point", fixture_inputs("point"));
}

TEST(ReleaseChain, Text) {
  OMNIBIND_REQUIRE_SHARED();
  check_chain("text", fixture_inputs("text"));  // more than 8: several batches
}

// The same texts reversed, in batches of 3: rows follow the new order (batching changes rounding only).
TEST(ReleaseChain, RowsFollowTheInputOrderWhateverTheBatches) {
  OMNIBIND_REQUIRE_SHARED();
  const Chain& c = chain();
  ASSERT_TRUE(c.convert_error.empty()) << c.convert_error;
  auto texts = fixture_inputs("text");
  const std::string a = (c.dir / "order_a.safetensors").string(), b = (c.dir / "order_b.safetensors").string();
  std::vector<std::string> args = {"embed", "--model", c.bundle, "--modality", "text", "--precision", "fp32", "--out", a};
  add_inputs(args, "text", texts);
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::reverse(texts.begin(), texts.end());
  args = {"embed", "--model", c.bundle, "--modality", "text", "--precision", "fp32", "--batch", "3", "--out", b};
  add_inputs(args, "text", texts);
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const at::Tensor ua = read_key(a, "text"), ub = read_key(b, "text");
  ASSERT_EQ(ua.sizes(), ub.sizes());
  const double d = max_abs(ua.flip({0}), ub);
  std::printf("[chain] text reversed in batches of 3 vs one order in batches of 8: max abs %.3g\n", d);
  EXPECT_LE(d, 1e-5);
}

// Issue 15: "Shared experts run once" (in OmniBind one EVA02-E feeds EVA_E14p and the Uni3D spaces'
// image/text). The fixtures' widths do not allow that binding (see the top of this file), so the same
// sharing is exercised with EVA02's files fed to two spaces of one width: convert places the file once
// and the bundle loads one instance that serves both names.
TEST(ReleaseChain, OneCheckpointFeedingTwoSpacesIsStoredAndLoadedOnce) {
  OMNIBIND_REQUIRE_SHARED();
  const Chain& c = chain();
  ASSERT_TRUE(c.convert_error.empty()) << c.convert_error;
  std::vector<ExpertFx> list = c.experts;
  for (auto& e : list)
    if (e.name == "DFN_H14") {
      const ExpertFx* eva = c.find("EVA_E14p", "image");
      e = *eva;
      e.name = "DFN_H14";
    }
  const std::string out = (c.dir / "shared_eva.bundle").string();
  auto r = run_cli(c.convert_args(list, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json manifest = read_json(out + "/bundle.json");
  std::map<std::string, json> entry;
  for (auto& e : manifest.at("experts")) entry[e.at("name").get<std::string>()] = e;
  EXPECT_EQ(entry.at("DFN_H14").at("weights"), entry.at("EVA_E14p").at("weights"));
  EXPECT_EQ(entry.at("DFN_H14").at("bpe"), entry.at("EVA_E14p").at("bpe"));
  auto b = pipeline::ModelBundle::load(out);
  for (auto m : {experts::Modality::Image, experts::Modality::Text}) {
    ASSERT_NE(b.expert_for("EVA_E14p", m), nullptr);
    EXPECT_EQ(b.expert_for("DFN_H14", m), b.expert_for("EVA_E14p", m)) << "one EVA02 instance for both spaces";
  }
  if (c.uni3d_takes_eva) {  // Large's own sharing, in the chain's bundle
    auto large = pipeline::ModelBundle::load(c.bundle);
    for (auto m : {experts::Modality::Image, experts::Modality::Text})
      for (const char* n : {"UNI3D_L", "UNI3D_M", "UNI3D_S"})
        EXPECT_EQ(large.expert_for(n, m), large.expert_for("EVA_E14p", m)) << n;
  }
}

namespace {

// The binding is the preset's: same spaces in the same order, same slots and router inputs per
// modality, the preset's head count and backbone handling; the only departure is the documented one
// when Uni3D and EVA02 widths differ.
void expect_preset_shape(const std::string& preset) {
  const Chain& c = chain(preset);
  const binding::BindingConfig want = binding::preset_config(preset);
  ASSERT_EQ(c.config.experts.size(), want.experts.size());
  for (size_t i = 0; i < want.experts.size(); ++i) {
    EXPECT_EQ(c.config.experts[i].name, want.experts[i].name);
    EXPECT_GT(c.config.experts[i].dim, 0) << want.experts[i].name;
  }
  EXPECT_EQ(c.config.backbone, want.backbone);
  EXPECT_EQ(c.config.backbone_in_output, want.backbone_in_output);
  EXPECT_EQ(c.config.heads_per_space, want.heads_per_space);
  for (const auto& m : binding::all_modalities()) {
    std::vector<std::string> slots, router = want.router_inputs.at(m);
    for (auto& s : want.slots(m))
      if (c.uni3d_takes_eva || m == "point" || s.rfind("UNI3D_", 0) != 0) slots.push_back(s);
    if (!c.uni3d_takes_eva)
      for (auto& n : router)
        if (n == "UNI3D_L" && m == "text") n = "EVA_E14p";
    EXPECT_EQ(c.config.slots(m), slots) << m;
    EXPECT_EQ(c.config.router_inputs.at(m), router) << m;
  }
  std::printf("[chain] %s binding: %s\n", preset.c_str(),
              c.uni3d_takes_eva ? "the preset's own (Uni3D and EVA02 of one width)"
                                : "the preset's with point-only Uni3D spaces (Uni3D and EVA02 widths differ)");
}

}  // namespace

TEST(ReleaseChain, TheBindingHasLargesShape) {
  OMNIBIND_REQUIRE_SHARED();
  expect_preset_shape("large");
}

// ---------------------------------------------------------------- Full (issue 20)

TEST(ReleaseChainFull, TheBindingHasFullsShape) {
  OMNIBIND_REQUIRE_SHARED();
  expect_preset_shape("full");
  const Chain& c = chain("full");
  EXPECT_TRUE(c.config.backbone_in_output);
  for (const char* m : {"image", "text"}) {
    const auto names = c.config.required_inputs(m);
    EXPECT_NE(std::find(names.begin(), names.end(), "EVA_18B"), names.end()) << m << ": Full runs EVA-CLIP-18B";
  }
  ASSERT_TRUE(c.convert_error.empty()) << c.convert_error;
  const json manifest = read_json(c.bundle + "/bundle.json");
  bool has = false;
  for (auto& e : manifest.at("experts"))
    if (e.at("name") == "EVA_18B") has = e.at("family") == "eva_clip_18b";
  EXPECT_TRUE(has) << manifest.dump();
}

// embed --model on the Full-shaped bundle, each modality as for Large.
class ReleaseChainFullModality : public ::testing::TestWithParam<std::string> {};

TEST_P(ReleaseChainFullModality, BundleEqualsExpertsPlusFuseAndTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  check_chain(GetParam(), fixture_inputs(GetParam(), "full"), "full");
}

INSTANTIATE_TEST_SUITE_P(ReleaseChainFull, ReleaseChainFullModality, ::testing::Values("audio", "image", "point", "text"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });
