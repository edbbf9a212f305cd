#include "omnibind/pipeline/model_bundle.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"

namespace omnibind::pipeline {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// A manifest path -> a path on disk (relative to the bundle); "" stays "". InputError when missing.
std::string resolve(const fs::path& dir, const std::string& source, const std::string& field, const std::string& p) {
  if (p.empty()) return p;
  fs::path full = fs::path(p).is_absolute() ? fs::path(p) : dir / p;
  std::error_code ec;
  require(fs::exists(full, ec), source + ": " + field + " '" + p + "' not found (" + full.string() + ")");
  return full.string();
}

// The heads as a state dict, plus the binding config the file's metadata carries (contract B).
struct Heads {
  tensor_io::StateDict sd;
  std::string binding_config_json;
};
Heads open_heads(const std::string& path) {
  if (tensor_io::looks_like_safetensors(path)) {
    auto st = tensor_io::read_safetensors(path);
    Heads h{std::move(st.tensors), ""};
    if (auto it = st.metadata.find("binding_config"); it != st.metadata.end()) h.binding_config_json = it->second;
    return h;
  }
  return Heads{tensor_io::load_checkpoint(path), ""};
}

// Runs one expert over a batch of inputs of one modality: [B, d] float32.
at::Tensor run_expert(const experts::Expert& e, Modality m, const std::vector<MediaInput>& inputs) {
  std::vector<at::Tensor> items;
  items.reserve(inputs.size());
  for (auto& in : inputs) items.push_back(e.preprocess(m, in));
  const bool same = std::all_of(items.begin(), items.end(), [&](const at::Tensor& t) { return t.sizes() == items[0].sizes(); });
  at::Tensor out;
  if (same) {
    out = e.encode(m, at::stack(items));
  } else {  // e.g. variable-length audio: one forward pass each
    std::vector<at::Tensor> rows;
    for (auto& t : items) rows.push_back(e.encode(m, t.unsqueeze(0)));
    out = at::cat(rows);
  }
  require(out.dim() == 2 && out.size(0) == static_cast<int64_t>(inputs.size()) && out.size(1) == e.dim(),
          "expert '" + e.name() + "' returned embeddings of an unexpected shape");
  return out.to(at::kFloat);
}

}  // namespace

ModelBundle ModelBundle::load(const fs::path& dir_in, const BundleLoadOptions& options) {
  std::error_code ec;
  require(fs::is_directory(dir_in, ec), dir_in.string() + ": not a model bundle directory");
  const fs::path manifest_path = dir_in / kBundleManifestFile;
  require(fs::is_regular_file(manifest_path, ec), dir_in.string() + ": no " + kBundleManifestFile + " (not a model bundle)");
  const std::string src = manifest_path.string();

  ModelBundle b;
  b.dir_ = dir_in;
  b.manifest_ = parse_bundle_manifest(read_file_bytes(src), src);
  check_recorded_sizes(dir_in, b.manifest_, src);  // bundle.json "files": sizes as recorded (cheap)
  const BundleManifest& mf = b.manifest_;
  const std::string precision = options.precision.empty() ? mf.precision : options.precision;
  const binding::Precision prec = binding::parse_precision(precision);

  // Heads and binding config.
  const std::string heads_path = resolve(dir_in, src, "heads", mf.heads);
  Heads heads = open_heads(heads_path);
  binding::BindingConfig config;
  if (!mf.preset.empty()) {
    config = binding::preset_config(mf.preset);
  } else if (mf.binding) {
    config = *mf.binding;
  } else {
    require(!heads.binding_config_json.empty(), src + ": field 'binding' is missing and " + mf.heads +
                                                    " has no __metadata__.binding_config to take it from");
    config = binding::parse_binding_config(heads.binding_config_json, heads_path + " __metadata__.binding_config");
  }
  if (mf.heads_layout == "folded")
    b.model_ = std::make_shared<binding::OmniBindModel>(binding::OmniBindModel::load_folded(heads.sd, config, prec));
  else
    b.model_ = std::make_shared<binding::OmniBindModel>(binding::OmniBindModel::load(heads.sd, config, prec));
  const binding::BindingConfig& cfg = b.model_->config();

  // Experts: one instance per distinct (family, files, size), shared by the entries naming it.
  std::map<std::string, std::shared_ptr<const experts::Expert>> instances;
  for (size_t i = 0; i < mf.experts.size(); ++i) {
    const BundleExpert& e = mf.experts[i];
    const std::string f = "experts[" + std::to_string(i) + "]";
    std::vector<std::string> bound;
    for (auto& x : cfg.experts) bound.push_back(x.name);
    require(cfg.find(e.name) != nullptr, src + ": field '" + f + ".name' names '" + e.name +
                                             "', which the binding does not bind (it binds " + join(bound) + ")");
    experts::ExpertOptions o;
    o.weights = resolve(dir_in, src, f + ".weights", e.weights);
    o.config = resolve(dir_in, src, f + ".config", e.config);
    o.bpe_vocab = resolve(dir_in, src, f + ".bpe", e.bpe);
    o.size = e.size;
    for (size_t v = 0; v < e.vocab.size(); ++v)
      o.vocab_files.push_back(resolve(dir_in, src, f + ".vocab[" + std::to_string(v) + "]", e.vocab[v]));
    o.precision = precision;
    o.threads = options.threads;
    std::string key = e.family + "\n" + o.weights + "\n" + o.config + "\n" + o.size + "\n" + o.bpe_vocab;
    for (auto& v : o.vocab_files) key += "\n" + v;
    auto it = instances.find(key);
    if (it == instances.end()) {
      std::shared_ptr<const experts::Expert> made;
      try {
        made = experts::create_expert(e.family, o);
      } catch (const InputError& err) {
        throw InputError(src + ": " + f + " ('" + e.name + "', family " + e.family + "): " + err.what());
      }
      it = instances.emplace(key, std::move(made)).first;
    }
    const experts::Expert& x = *it->second;
    for (auto& mod : e.modalities)
      require(x.covers(experts::parse_modality(mod)), src + ": field '" + f + ".modalities' lists " + mod + " but family '" +
                                                         e.family + "' (" + (e.weights.empty() ? "" : e.weights) +
                                                         ") does not embed it");
    int64_t want = 0;
    try {
      want = b.model_->input_dim(e.name);
    } catch (const InputError&) {
      want = cfg.find(e.name)->dim;  // an expert the heads never see (e.g. a Base/Large backbone)
    }
    require(want <= 0 || x.dim() == want, src + ": " + f + " ('" + e.name + "', family " + e.family + ") gives " +
                                              std::to_string(x.dim()) + "-d embeddings but the heads take " +
                                              std::to_string(want));
    b.feeds_.push_back(Feed{e, it->second});
  }

  if (b.modalities().empty()) {
    std::string why;
    for (auto& m : b.model_->modalities()) {
      std::vector<std::string> missing;
      for (auto& n : b.model_->required_inputs(m))
        if (!b.expert_for(n, experts::parse_modality(m))) missing.push_back(n);
      why += (why.empty() ? "" : "; ") + m + " lacks " + join(missing);
    }
    throw InputError(src + ": no modality has an expert for every space it needs (" + why + ")");
  }
  return b;
}

const experts::Expert* ModelBundle::expert_for(const std::string& name, Modality m) const {
  const std::string mn(experts::modality_name(m));
  for (auto& f : feeds_) {
    if (f.entry.name != name) continue;
    if (f.entry.modalities.empty() ? f.expert->covers(m) : contains(f.entry.modalities, mn)) return f.expert.get();
  }
  return nullptr;
}

std::vector<Modality> ModelBundle::modalities() const {
  std::vector<Modality> out;
  for (auto& name : model_->modalities()) {
    Modality m = experts::parse_modality(name);
    bool ok = true;
    for (auto& n : model_->required_inputs(name)) ok = ok && expert_for(n, m) != nullptr;
    if (ok) out.push_back(m);
  }
  return out;
}

bool ModelBundle::covers(Modality m) const {
  auto ms = modalities();
  return std::find(ms.begin(), ms.end(), m) != ms.end();
}

std::string ModelBundle::name() const { return "omnibind:" + model_->config().name; }

void ModelBundle::check_covers(Modality m) const {
  if (covers(m)) return;
  std::string have;
  for (auto x : modalities()) have += (have.empty() ? "" : ", ") + std::string(experts::modality_name(x));
  throw InputError("model bundle " + dir_.string() + " does not embed " + std::string(experts::modality_name(m)) +
                   " (it embeds " + have + ")");
}

std::map<std::string, at::Tensor> ModelBundle::expert_embeddings(Modality m, const std::vector<MediaInput>& inputs) const {
  check_covers(m);
  require(!inputs.empty(), "nothing to embed");
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  std::map<const experts::Expert*, at::Tensor> done;  // one expert feeding several names runs once
  for (auto& n : model_->required_inputs(std::string(experts::modality_name(m)))) {
    const experts::Expert* e = expert_for(n, m);
    auto it = done.find(e);
    if (it == done.end()) it = done.emplace(e, run_expert(*e, m, inputs)).first;
    out[n] = it->second;
  }
  return out;
}

at::Tensor ModelBundle::embed(Modality m, const std::vector<MediaInput>& inputs) const {
  auto x = expert_embeddings(m, inputs);
  at::NoGradGuard no_grad;
  return model_->embed(std::string(experts::modality_name(m)), x);
}

at::Tensor ModelBundle::routing_weights(Modality m, const std::vector<MediaInput>& inputs) const {
  auto x = expert_embeddings(m, inputs);
  at::NoGradGuard no_grad;
  return model_->routing_weights(std::string(experts::modality_name(m)), x);
}

void write_bundle(const fs::path& dir, const BundleManifest& manifest, const std::vector<BundleFile>& files, bool overwrite) {
  std::error_code ec;
  require(!dir.empty(), "no bundle directory given");
  require(overwrite || !fs::exists(dir, ec), dir.string() + ": already exists (refusing to overwrite)");
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  require(fs::is_directory(parent, ec), parent.string() + ": directory not found");
  std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(::getpid()));
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000);
  const fs::path staging = parent / (dir.filename().string() + ".tmp-" + tag);
  fs::create_directories(staging);
  try {
    write_bytes_atomically((staging / kBundleManifestFile).string(), bundle_manifest_to_json(manifest));
    for (auto& f : files) {
      fs::path rel(f.relative);
      require(!f.relative.empty() && rel.is_relative() && std::none_of(rel.begin(), rel.end(), [](auto& p) { return p == ".."; }),
              "bundle file '" + f.relative + "' must be a relative path inside the bundle");
      fs::path target = staging / rel;
      fs::create_directories(target.parent_path());
      if (f.write) {
        f.write(target.string());
      } else {
        require(fs::is_regular_file(f.source, ec), f.source + ": file not found");
        fs::create_hard_link(f.source, target, ec);
        if (ec) fs::copy_file(f.source, target, fs::copy_options::overwrite_existing);
      }
    }
    if (fs::exists(dir, ec)) {
      const fs::path old = parent / (dir.filename().string() + ".old-" + tag);
      fs::rename(dir, old);
      fs::rename(staging, dir);
      fs::remove_all(old, ec);
    } else {
      fs::rename(staging, dir);
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

}  // namespace omnibind::pipeline
