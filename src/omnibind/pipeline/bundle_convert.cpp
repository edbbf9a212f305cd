#include "omnibind/pipeline/bundle_convert.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "omnibind/binding/folded_linear.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/pipeline/file_digest.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::pipeline {

namespace fs = std::filesystem;

ConvertExpert parse_convert_expert(const std::string& spec) {
  const std::string what = "--expert '" + spec + "'";
  const std::string form =
      " (expected NAME=FAMILY:WEIGHTS[,size=S][,config=FILE][,bpe=FILE][,vocab=FILE]...[,modalities=a+b])";
  auto eq = spec.find('=');
  require(eq != std::string::npos && eq > 0, what + ": no NAME=" + form);
  ConvertExpert e;
  e.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  auto colon = rest.find(':');
  require(colon != std::string::npos && colon > 0, what + ": no FAMILY:" + form);
  e.family = rest.substr(0, colon);
  std::stringstream parts(rest.substr(colon + 1));
  std::string part;
  bool first = true;
  while (std::getline(parts, part, ',')) {
    if (first) {
      e.weights = part;
      first = false;
      continue;
    }
    auto kv = part.find('=');
    require(kv != std::string::npos, what + ": '" + part + "' is not key=value" + form);
    const std::string k = part.substr(0, kv), v = part.substr(kv + 1);
    if (k == "size") e.size = v;
    else if (k == "config") e.config = v;
    else if (k == "bpe") e.bpe = v;
    else if (k == "vocab") e.vocab.push_back(v);
    else if (k == "modalities") {
      std::stringstream ms(v);
      std::string m;
      while (std::getline(ms, m, '+')) e.modalities.push_back(m);
    } else {
      throw InputError(what + ": unknown key '" + k + "'" + form);
    }
  }
  return e;
}

BundleManifest convert_to_bundle(const fs::path& out, const ConvertOptions& o) {
  require(!o.heads.empty(), "no heads checkpoint (--heads CKPT)");
  require(o.preset.empty() || o.config.empty(), "give at most one of --preset and --config");
  require(o.layout == "folded" || o.layout == "official", "--layout must be folded or official, got '" + o.layout + "'");
  require(o.precision == "auto" || o.precision == "fp32" || o.precision == "bf16",
          "--precision must be fp32, bf16 or auto, got '" + o.precision + "'");
  require(!o.experts.empty(), "no experts (--expert NAME=FAMILY:WEIGHTS, one per bound space)");
  std::error_code ec;
  require(o.overwrite || !fs::exists(out, ec), out.string() + ": already exists (pass --overwrite to replace it)");

  // The heads, checked against the binding by building the model once.
  tensor_io::StateDict sd = tensor_io::load_checkpoint(o.heads, {o.select});
  BundleManifest m;
  binding::BindingConfig config;
  if (!o.preset.empty()) {
    config = binding::preset_config(o.preset);
    m.preset = config.name;
  } else if (!o.config.empty()) {
    config = binding::load_binding_config(o.config);
    m.binding = config;
  } else {
    config = binding::binding_config_of_checkpoint(o.heads);
    m.binding = config;
  }
  const binding::OmniBindModel model = binding::OmniBindModel::load(sd, config);
  if (m.binding) m.binding = model.config();  // widths as the checkpoint has them

  m.heads = "heads.safetensors";
  m.heads_layout = o.layout;
  m.precision = o.precision;
  const std::string files_mode = o.reference_experts ? "reference" : o.expert_files;
  require(files_mode == "auto" || files_mode == "reference" || files_mode == "link" || files_mode == "copy",
          "expert files mode must be auto, reference, link or copy, got '" + files_mode + "'");
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  require(fs::is_directory(parent, ec), parent.string() + ": directory not found");

  // The heads file is written beside the bundle first, so its size and sha256 can be recorded; the
  // bundle then hard-links it (same directory, same file system).
  const fs::path heads_tmp = parent / (out.filename().string() + ".heads-" + std::to_string(::getpid()) + ".safetensors");
  struct RemoveOnExit {
    fs::path p;
    ~RemoveOnExit() {
      std::error_code e;
      fs::remove(p, e);
    }
  } remove_heads_tmp{heads_tmp};
  std::map<std::string, std::string> meta = {{"binding_config", binding::binding_config_to_json(model.config())},
                                             {"heads_layout", o.layout},
                                             {"converted_from", fs::path(o.heads).filename().string()}};
  if (o.layout == "folded") {
    meta["bn_eps"] = std::to_string(binding::kBatchNormEps);
    tensor_io::write_tensors(heads_tmp.string(), model.folded_tensors(), meta);
  } else {
    std::vector<std::pair<std::string, tensor_io::RawTensor>> ts;
    for (auto& n : sd.names()) ts.emplace_back(n, sd.at(n));
    tensor_io::write_safetensors(heads_tmp.string(), ts, meta);
  }
  std::vector<BundleFile> files;
  files.push_back({m.heads, heads_tmp.string(), nullptr});
  std::map<std::string, std::string> source_of = {{m.heads, heads_tmp.string()}};  // manifest path -> file to record

  // Experts: files placed under experts/<NAME>/ (or referenced where they are). A file several
  // entries use (EVA02-E for EVA_E14p and the Uni3D spaces' image/text) is placed once, so the
  // entries keep naming the same path and ModelBundle shares one instance.
  std::map<std::string, std::string> placed;  // absolute source -> manifest path
  for (auto& e : o.experts) {
    BundleExpert b{e.name, e.family, "", "", e.size, "", e.modalities};
    require(config.find(e.name) != nullptr, "--expert " + e.name + ": the binding has no expert of that name");
    auto place = [&](const std::string& file, const std::string& flag) -> std::string {
      if (file.empty()) return "";
      require(fs::exists(file, ec), "--expert " + e.name + ": " + flag + " " + file + " not found");
      const std::string abs = fs::absolute(file).lexically_normal().string();
      if (auto it = placed.find(abs); it != placed.end()) return it->second;
      std::string rel;
      if (files_mode == "reference" || fs::is_directory(file, ec)) {
        rel = abs;
      } else {
        // Links and copies take the file a symlink points to (a Hugging Face cache snapshot entry is a
        // relative symlink into blobs/, which would dangle inside the bundle).
        const std::string real = fs::canonical(file).string();
        rel = "experts/" + e.name + "/" + fs::path(file).filename().string();
        for (int k = 2; source_of.count(rel); ++k)
          rel = "experts/" + e.name + "/" + std::to_string(k) + "-" + fs::path(file).filename().string();
        if (files_mode == "auto") {
          files.push_back({rel, real, nullptr});
        } else if (files_mode == "copy") {
          files.push_back({rel, "", [real](const std::string& p) { fs::copy_file(real, p, fs::copy_options::overwrite_existing); }});
        } else {
          files.push_back({rel, "", [real, file](const std::string& p) {
                             std::error_code lec;
                             fs::create_hard_link(real, p, lec);
                             require(!lec, "--link: cannot hard-link " + file + " into " + fs::path(p).parent_path().string() +
                                               " (" + lec.message() + "; a different file system?): drop --link to "
                                               "reference it, or pass --copy");
                           }});
        }
      }
      placed[abs] = rel;
      if (!fs::is_directory(file, ec)) source_of[rel] = file;
      // A Hugging Face shard index (EVA-CLIP-18B): its shards go beside it, under their own names (or,
      // referenced, stay beside it); either way each one's size and sha256 are recorded.
      for (const auto& shard : experts::eva_clip::shard_files(file)) {
        const fs::path src = fs::path(file).parent_path() / shard;
        require(fs::is_regular_file(src, ec), "--expert " + e.name + ": " + src.string() + " (a shard " + file +
                                                  " names) not found");
        const std::string srel = (fs::path(rel).parent_path() / shard).string();
        if (source_of.count(srel)) continue;
        if (rel == abs) {  // referenced where it is
          source_of[srel] = src.string();
          continue;
        }
        const std::string real = fs::canonical(src).string();
        if (files_mode == "copy")
          files.push_back({srel, "", [real](const std::string& p) { fs::copy_file(real, p, fs::copy_options::overwrite_existing); }});
        else if (files_mode == "link")
          files.push_back({srel, "", [real](const std::string& p) {
                             std::error_code lec;
                             fs::create_hard_link(real, p, lec);
                             require(!lec, "--link: cannot hard-link " + real + " (" + lec.message() + ")");
                           }});
        else
          files.push_back({srel, real, nullptr});
        placed[fs::absolute(src).lexically_normal().string()] = srel;
        source_of[srel] = src.string();
      }
      return rel;
    };
    b.weights = place(e.weights, "weights");
    b.config = place(e.config, "config");
    b.bpe = place(e.bpe, "bpe");
    for (auto& v : e.vocab) b.vocab.push_back(place(v, "vocab"));
    m.experts.push_back(std::move(b));
  }

  // Sizes and sha256 of every file the manifest names.
  for (auto& [path, source] : source_of) {
    BundleFileRecord rec;
    rec.path = path;
    rec.bytes = fs::file_size(source);
    if (o.record_sha256) {
      std::function<void(uint64_t, uint64_t)> cb;
      if (o.progress && rec.bytes >= (256ull << 20)) cb = [&, name = path](uint64_t d, uint64_t t) { o.progress(name, d, t); };
      rec.sha256 = sha256_file(source, cb);
    }
    m.files.push_back(std::move(rec));
  }

  if (!o.check) {
    write_bundle(out, m, files, o.overwrite);
    return m;
  }
  // Written beside `out` first and loaded (experts included): a bundle that does not load never
  // replaces anything.
  const fs::path staging = parent / (out.filename().string() + ".check-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  write_bundle(staging, m, files);
  try {
    ModelBundle::load(staging).verify_experts();  // experts are built lazily: check each once
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  if (fs::exists(out, ec)) {
    const fs::path old = parent / (out.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::rename(out, old);
    fs::rename(staging, out);
    fs::remove_all(old, ec);
  } else {
    fs::rename(staging, out);
  }
  return m;
}

}  // namespace omnibind::pipeline
