#include "omnibind/pipeline/release_files.h"

#include <algorithm>
#include <set>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/experts/checkpoint_family.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::pipeline {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

ReleaseFile heads_file(const std::string& preset) {
  const std::string f = preset + ".pt";
  return {"heads", "heads", {"checkpoints/projs/" + f, "projs/" + f}, {"Viglong/OmniBind"},
          {"projs/" + f, "checkpoints/projs/" + f},
          "OmniBind release: Hugging Face Viglong/OmniBind, placed at checkpoints/projs/" + f + " (OmniBind README)"};
}

ReleaseFile local(const std::string& name, const std::vector<std::string>& paths, const std::string& source) {
  return {name, "weights", paths, {}, {}, source};
}

ReleaseFile hub(const std::string& name, const std::string& kind, const std::vector<std::string>& repos,
                const std::vector<std::string>& files, const std::string& source) {
  return {name, kind, {}, repos, files, source};
}

const std::string kWavCapsSource =
    "WavCaps release (XinhaoMei/WavCaps retrieval checkpoints), placed at checkpoints/wavcaps/ (OmniBind README)";
const std::string kUni3dSource = "Uni3D release (baaivision/Uni3D, Uni3D-g checkpoints; Hugging Face BAAI/Uni3D), "
                                 "placed at checkpoints/uni3d-g/ (OmniBind README)";
const std::string kClapSource = "LAION-CLAP release (Hugging Face lukewys/laion_clap), placed at checkpoints/clap/ (OmniBind README)";

std::vector<ReleaseFile> all_files(const std::string& preset) {
  std::vector<ReleaseFile> f = {
      heads_file(preset),
      local("WAVCAPS_PT", {"checkpoints/wavcaps/HTSAT-BERT-PT.pt"}, kWavCapsSource),
      local("WAVCAPS_FT_aud", {"checkpoints/wavcaps/HTSAT-BERT-FT-AudioCaps.pt"}, kWavCapsSource),
      local("WAVCAPS_FT_clo", {"checkpoints/wavcaps/HTSAT-BERT-FT-Clotho.pt"}, kWavCapsSource),
      {"EVA_E14p", "weights", {"checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt"}, {"QuanSun/EVA-CLIP"},
       {"EVA02_CLIP_E_psz14_plus_s9B.pt"},
       "EVA-CLIP release (Hugging Face QuanSun/EVA-CLIP), placed at checkpoints/ (OmniBind README)"},
      local("UNI3D_L", {"checkpoints/uni3d-g/lvis/model.pt"}, kUni3dSource),
      local("IB", {".checkpoints/imagebind_huge.pth", "checkpoints/imagebind_huge.pth", "imagebind_huge.pth"},
            "https://dl.fbaipublicfiles.com/omnivore/imagebind_huge.pth (ImageBind downloads it to .checkpoints/ on "
            "first use)"),
      {"bpe", "tokenizer",
       {"bpe/bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt.gz", "checkpoints/bpe_simple_vocab_16e6.txt.gz"},
       {}, {},
       "the OmniBind repository's bpe/bpe_simple_vocab_16e6.txt.gz (the CLIP BPE vocabulary ImageBind, EVA-CLIP and "
       "open_clip ship)"},
      hub("bert_vocab", "tokenizer", {"bert-base-uncased", "google-bert/bert-base-uncased"}, {"vocab.txt"},
          "Hugging Face hub bert-base-uncased (WavCaps' BertTokenizer.from_pretrained)"),
  };
  if (preset == "large" || preset == "full") {
    const std::vector<ReleaseFile> more = {
        local("UNI3D_M", {"checkpoints/uni3d-g/mnet40/model.pt"}, kUni3dSource),
        local("UNI3D_S", {"checkpoints/uni3d-g/scanobjnn/model.pt"}, kUni3dSource),
        {"CLAP_G", "weights", {"checkpoints/clap/630k-fusion-best.pt", "checkpoints/clap/630k_clap_fullset_fusion.pt"},
         {"lukewys/laion_clap"}, {"630k-fusion-best.pt"},
         kClapSource + "; paths.py reads 630k-fusion-best.pt, the README names it 630k_clap_fullset_fusion.pt"},
        {"CLAP_M", "weights", {"checkpoints/clap/music_speech_audioset_epoch_15_esc_89.98.pt"}, {"lukewys/laion_clap"},
         {"music_speech_audioset_epoch_15_esc_89.98.pt"}, kClapSource},
        hub("DFN_H14", "weights", {"apple/DFN5B-CLIP-ViT-H-14"}, {"open_clip_pytorch_model.bin", "open_clip_model.safetensors"},
            "Hugging Face hub apple/DFN5B-CLIP-ViT-H-14 (open_clip create_model_from_pretrained('hf-hub:...'))"),
        hub("SigLip_384", "weights", {"google/siglip-large-patch16-384"}, {"model.safetensors"},
            "Hugging Face hub google/siglip-large-patch16-384 (transformers AutoModel.from_pretrained)"),
        hub("SigLip_400M_384", "weights", {"google/siglip-so400m-patch14-384"}, {"model.safetensors"},
            "Hugging Face hub google/siglip-so400m-patch14-384 (transformers AutoModel.from_pretrained)"),
        hub("roberta_vocab", "tokenizer", {"roberta-base", "FacebookAI/roberta-base"}, {"vocab.json"},
            "Hugging Face hub roberta-base (CLAP's RobertaTokenizer)"),
        hub("roberta_merges", "tokenizer", {"roberta-base", "FacebookAI/roberta-base"}, {"merges.txt"},
            "Hugging Face hub roberta-base (CLAP's RobertaTokenizer)"),
        hub("SigLip_384.spiece", "tokenizer", {"google/siglip-large-patch16-384"}, {"spiece.model"},
            "Hugging Face hub google/siglip-large-patch16-384 (transformers AutoProcessor.from_pretrained)"),
        hub("SigLip_400M_384.spiece", "tokenizer", {"google/siglip-so400m-patch14-384"}, {"spiece.model"},
            "Hugging Face hub google/siglip-so400m-patch14-384 (transformers AutoProcessor.from_pretrained)"),
    };
    f.insert(f.end(), more.begin(), more.end());
  }
  if (preset == "full") {
    // Full = Large + EVA-CLIP-18B run at inference. OmniBind loads the hub port (BAAI/EVA-CLIP-18B,
    // AutoModel: the safetensors shards through their index); the EVA README's PyTorch file is the same
    // model in eva_clip's layout. Either works (mapped, never converted).
    f.push_back({"EVA_18B", "weights",
                 {"checkpoints/EVA_CLIP_18B_psz14_s6B.fp16.pt", "checkpoints/EVA-CLIP-18B/model.safetensors.index.json"},
                 {"BAAI/EVA-CLIP-18B"},
                 {"model.safetensors.index.json", "EVA_CLIP_18B_psz14_s6B.fp16.pt"},
                 "Hugging Face hub BAAI/EVA-CLIP-18B (OmniBind's AutoModel.from_pretrained: model.safetensors.index.json "
                 "and its shards; or the EVA README's EVA_CLIP_18B_psz14_s6B.fp16.pt, 36.7 GB)"});
  }
  return f;
}

std::vector<ReleaseSpace> all_spaces(const std::string& preset_in) {
  // Full's spaces are Large's plus EVA_18B (the backbone, run for image and text).
  const std::string preset = preset_in == "full" ? "large" : preset_in;
  std::vector<ReleaseSpace> s;
  if (preset == "large") {
    s.push_back({"CLAP_G", "clap", "fusion", "CLAP_G", "", {"roberta_vocab", "roberta_merges"}, ""});
    s.push_back({"CLAP_M", "clap", "base", "CLAP_M", "", {"roberta_vocab", "roberta_merges"}, ""});
  }
  s.push_back({"WAVCAPS_PT", "wavcaps", "pt", "WAVCAPS_PT", "", {"bert_vocab"}, ""});
  s.push_back({"WAVCAPS_FT_aud", "wavcaps", "ft_aud", "WAVCAPS_FT_aud", "", {"bert_vocab"}, ""});
  s.push_back({"WAVCAPS_FT_clo", "wavcaps", "ft_clo", "WAVCAPS_FT_clo", "", {"bert_vocab"}, ""});
  if (preset == "large") s.push_back({"DFN_H14", "open_clip", "dfn5b-h14", "DFN_H14", "bpe", {}, ""});
  s.push_back({"EVA_E14p", "eva_clip", "E14p", "EVA_E14p", "bpe", {}, ""});
  if (preset == "large") {
    s.push_back({"SigLip_384", "siglip", "large16", "SigLip_384", "", {"SigLip_384.spiece"}, ""});
    s.push_back({"SigLip_400M_384", "siglip", "so400m14", "SigLip_400M_384", "", {"SigLip_400M_384.spiece"}, ""});
  }
  s.push_back({"UNI3D_L", "uni3d", "giant", "UNI3D_L", "", {}, "EVA_E14p"});
  if (preset == "large") {
    s.push_back({"UNI3D_M", "uni3d", "giant", "UNI3D_M", "", {}, "EVA_E14p"});
    s.push_back({"UNI3D_S", "uni3d", "giant", "UNI3D_S", "", {}, "EVA_E14p"});
  }
  s.push_back({"IB", "imagebind", "huge", "IB", "bpe", {}, ""});
  if (preset_in == "full") s.push_back({"EVA_18B", "eva_clip_18b", "EVA-CLIP-18B", "EVA_18B", "bpe", {}, ""});
  return s;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symlinks
}

// from/models--ORG--NAME/snapshots/*/F (the snapshot refs/main names first).
std::string find_in_hub_cache(const fs::path& cache, const std::string& repo, const std::string& file) {
  std::string dir = "models--" + repo;
  for (size_t i = 0; (i = dir.find('/', i)) != std::string::npos;) dir.replace(i, 1, "--");
  const fs::path root = cache / dir;
  std::error_code ec;
  if (!fs::is_directory(root / "snapshots", ec)) return "";
  const std::string main = is_file(root / "refs" / "main") ? read_file_bytes((root / "refs" / "main").string()) : "";
  const std::string main_rev = main.substr(0, main.find_first_of(" \r\n"));
  if (!main_rev.empty() && is_file(root / "snapshots" / main_rev / file)) return (root / "snapshots" / main_rev / file).string();
  std::vector<std::string> hits;
  for (auto& e : fs::directory_iterator(root / "snapshots", ec))
    if (is_file(e.path() / file)) hits.push_back((e.path() / file).string());
  std::sort(hits.begin(), hits.end());
  if (hits.size() > 1)
    throw InputError(root.string() + ": " + std::to_string(hits.size()) + " snapshots hold " + file +
                     " and refs/main names none of them (" + join(hits) + "); pick one with --file");
  return hits.empty() ? "" : hits[0];
}

std::string repo_name(const std::string& repo) {
  const auto slash = repo.rfind('/');
  return slash == std::string::npos ? repo : repo.substr(slash + 1);
}

}  // namespace

const ReleaseFile* ReleaseTable::file(const std::string& name) const {
  for (auto& f : files)
    if (f.name == name) return &f;
  return nullptr;
}

const ReleaseSpace* ReleaseTable::space(const std::string& name) const {
  for (auto& s : spaces)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> ReleaseTable::users(const std::string& name) const {
  if (name == "heads") return {"heads"};
  std::vector<std::string> out;
  for (auto& s : spaces) {
    bool uses = s.weights == name || s.bpe == name || contains(s.vocab, name);
    if (!uses && !s.image_text_from.empty())
      if (const ReleaseSpace* src = space(s.image_text_from))
        uses = src->weights == name || src->bpe == name || contains(src->vocab, name);
    if (uses) out.push_back(s.name);
  }
  return out;
}

std::vector<std::string> ReleaseTable::file_names() const {
  std::vector<std::string> out;
  for (auto& f : files) out.push_back(f.name);
  for (auto& s : spaces) out.push_back(s.name + ".config");
  return out;
}

ReleaseTable release_table(const std::string& preset_in) {
  const std::string preset = lower(preset_in);
  require(preset == "base" || preset == "large" || preset == "full",
          "--preset " + preset_in + ": convert --from knows the released files of base, large and full");
  return ReleaseTable{preset, all_files(preset), all_spaces(preset)};
}

std::vector<std::string> release_search_paths(const ReleaseFile& f) {
  std::vector<std::string> out = f.paths;
  for (auto& repo : f.hub_repos)
    for (auto& file : f.hub_files) {
      std::string dir = "models--" + repo;
      for (size_t i = 0; (i = dir.find('/', i)) != std::string::npos;) dir.replace(i, 1, "--");
      out.push_back("[hub/]" + dir + "/snapshots/*/" + file);
      out.push_back(repo + "/" + file);
      if (repo_name(repo) != repo) out.push_back(repo_name(repo) + "/" + file);
    }
  return out;
}

std::string find_release_file(const fs::path& from, const ReleaseFile& f) {
  for (auto& p : f.paths)
    if (is_file(from / p)) return (from / p).string();
  for (auto& repo : f.hub_repos)
    for (auto& file : f.hub_files) {
      for (const fs::path& cache : {from, from / "hub"})
        if (auto hit = find_in_hub_cache(cache, repo, file); !hit.empty()) return hit;
      if (is_file(from / repo / file)) return (from / repo / file).string();
      if (is_file(from / repo_name(repo) / file)) return (from / repo_name(repo) / file).string();
    }
  return "";
}

std::pair<std::string, std::string> parse_file_override(const std::string& arg) {
  const auto eq = arg.find('=');
  require(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(),
          "--file '" + arg + "': expected NAME=PATH (e.g. WAVCAPS_PT=/models/HTSAT-BERT-PT.pt, heads=..., bert_vocab=...)");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

ConvertOptions plan_release_convert(const ReleaseRequest& r) {
  const ReleaseTable table = release_table(r.preset);
  std::error_code ec;
  require(!r.from.empty(), "--from: no folder given");
  require(fs::is_directory(r.from, ec), "--from " + r.from + ": not a directory");
  const binding::BindingConfig config =
      r.config.empty() ? binding::preset_config(table.preset) : binding::load_binding_config(r.config);

  // --file names must be table names.
  const std::vector<std::string> names = table.file_names();
  for (auto& [name, path] : r.files)
    require(contains(names, name), "--file " + name + "=" + path + ": '" + name + "' is not a file of the " + table.preset +
                                       " release (known: " + join(names) + ")");

  // The spaces the binding binds, and every space a modality needs must be in the table.
  std::vector<const ReleaseSpace*> spaces;
  for (auto& s : table.spaces)
    if (config.find(s.name)) spaces.push_back(&s);
  for (auto& m : binding::all_modalities())
    for (auto& n : config.required_inputs(m))
      require(table.space(n) != nullptr, (r.config.empty() ? "the " + table.preset + " preset" : r.config) + " binds " + n +
                                             " (needed for " + m + "), which the " + table.preset +
                                             " release table has no files for (it has " + [&] {
                                               std::vector<std::string> v;
                                               for (auto& s : table.spaces) v.push_back(s.name);
                                               return join(v);
                                             }() + ")");
  // A Uni3D space whose binding covers image/text needs its image_text_from space's files too.
  auto image_text_modalities = [&](const ReleaseSpace& s) {
    std::vector<std::string> out;
    if (s.image_text_from.empty()) return out;
    for (const char* m : {"image", "text"})
      if (config.find(s.name)->covers(m) || contains(config.find(s.name)->extra_inputs, m)) out.push_back(m);
    return out;
  };
  std::vector<std::string> needed = {"heads"};
  auto need = [&](const std::string& n) {
    if (!n.empty() && !contains(needed, n)) needed.push_back(n);
  };
  for (auto* s : spaces) {
    need(s->weights);
    need(s->bpe);
    for (auto& v : s->vocab) need(v);
    if (!image_text_modalities(*s).empty()) {
      const ReleaseSpace* src = table.space(s->image_text_from);
      need(src->weights);
      need(src->bpe);
      for (auto& v : src->vocab) need(v);
    }
  }

  // Locate everything; report every missing file at once.
  std::map<std::string, std::string> at;
  std::vector<std::string> missing;
  for (auto& n : needed) {
    const ReleaseFile& f = *table.file(n);
    const std::vector<std::string> users = table.users(n);
    const std::string who = n == "heads"                             ? "the " + table.preset + " heads and routers"
                            : users == std::vector<std::string>{n} ? "weights"
                                                                   : "needed by " + join(users);
    if (auto it = r.files.find(n); it != r.files.end()) {
      if (is_file(it->second)) at[n] = it->second;
      else missing.push_back(it->second + " (--file " + n + ", " + who + "): not found");
      continue;
    }
    at[n] = find_release_file(r.from, f);
    if (at[n].empty())
      missing.push_back((f.paths.empty() ? release_search_paths(f).front() : f.paths.front()) + " (" + n +
                        (who == "weights" ? " weights" : ", " + who) +
                        "; from " + f.source + "; or --file " + n + "=PATH)");
  }
  for (auto& [name, path] : r.files)
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".config") == 0 && !is_file(path))
      missing.push_back(path + " (--file " + name + "): not found");
  if (!missing.empty())
    throw MissingReleaseFiles(r.from + ": " + std::to_string(missing.size()) + " file(s) of the " + table.preset +
                                  " release missing, first: " + missing.front(),
                              missing);

  // Each weights file must be the family its slot needs (from its keys; nothing is built yet).
  const fs::path from = fs::absolute(r.from).lexically_normal();
  auto shown = [&](const std::string& path) {
    const fs::path rel = fs::absolute(path).lexically_normal().lexically_relative(from);
    return !rel.empty() && rel.native().rfind("..", 0) != 0 ? rel.string() : path;
  };
  auto check = [&](const std::string& file_name, const std::string& family, const std::string& size, const std::string& slot) {
    const std::string& path = at[file_name];
    tensor_io::StateDict sd;
    try {
      // EVA-CLIP-18B may come as Hugging Face shards (an index.json and its files): every shard is checked.
      sd = family == "eva_clip_18b" ? experts::eva_clip::open_state_dict(path) : tensor_io::load_checkpoint(path);
    } catch (const std::exception& e) {
      std::string why = e.what();
      why = why.substr(0, why.find('\n'));
      throw InputError(shown(path) + ": cannot be read as a checkpoint, truncated or damaged? (" + file_name + "; " + why + ")");
    }
    const auto found = experts::detect_checkpoint_family(sd);
    const std::string want = experts::family_phrase(family, size);
    if (found.family.empty())
      throw InputError(shown(path) + " is not a checkpoint of any expert family this build knows, but " + slot + " needs " + want +
                       " one");
    if (found.family != family || (!size.empty() && !found.size.empty() && found.size != size && family != "wavcaps"))
      throw InputError(shown(path) + " is " + found.phrase + " checkpoint, but " + slot + " needs " + want + " one");
  };
  check("heads", "omnibind-heads", "", "the " + table.preset + " heads slot");
  std::set<std::string> checked;
  for (auto* s : spaces)
    if (checked.insert(s->weights).second) check(s->weights, s->family, s->size, s->name);
  for (auto* s : spaces)
    if (!image_text_modalities(*s).empty()) {
      const ReleaseSpace* src = table.space(s->image_text_from);
      if (checked.insert(src->weights).second) check(src->weights, src->family, src->size, s->name + " (image/text)");
    }

  // The conversion.
  ConvertOptions o;
  o.heads = at["heads"];
  if (r.config.empty()) o.preset = table.preset;
  else o.config = r.config;
  auto entry = [&](const std::string& name, const ReleaseSpace& s, std::vector<std::string> modalities) {
    ConvertExpert e;
    e.name = name;
    e.family = s.family;
    e.weights = at[s.weights];
    if (auto it = r.files.find(s.name + ".config"); it != r.files.end()) e.config = it->second;
    e.size = s.size;
    if (!s.bpe.empty()) e.bpe = at[s.bpe];
    for (auto& v : s.vocab) e.vocab.push_back(at[v]);
    e.modalities = std::move(modalities);
    return e;
  };
  for (auto* s : spaces) {
    const auto it_mods = image_text_modalities(*s);
    if (s->image_text_from.empty()) {
      o.experts.push_back(entry(s->name, *s, {}));
      continue;
    }
    const auto& spec = *config.find(s->name);
    if (spec.covers("point")) o.experts.push_back(entry(s->name, *s, {"point"}));
    if (!it_mods.empty()) o.experts.push_back(entry(s->name, *table.space(s->image_text_from), it_mods));
  }
  return o;
}

}  // namespace omnibind::pipeline
