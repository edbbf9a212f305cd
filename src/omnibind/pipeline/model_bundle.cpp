#include "omnibind/pipeline/model_bundle.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/cpu_features.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/expert_probe.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"

namespace omnibind::pipeline {

namespace fs = std::filesystem;

at::Tensor encode_items(const experts::Expert& e, Modality m, const std::vector<at::Tensor>& items) {
  const bool same = std::all_of(items.begin(), items.end(), [&](const at::Tensor& t) { return t.sizes() == items[0].sizes(); });
  at::Tensor out;
  if (same) {
    out = e.encode(m, at::stack(items));
  } else {  // e.g. variable-length audio: one forward pass each
    std::vector<at::Tensor> rows;
    for (auto& t : items) rows.push_back(e.encode(m, t.unsqueeze(0)));
    out = at::cat(rows);
  }
  require(out.dim() == 2 && out.size(0) == static_cast<int64_t>(items.size()) && out.size(1) == e.dim(),
          "expert '" + e.name() + "' returned embeddings of an unexpected shape");
  return out.to(at::kFloat).contiguous();
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

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
  Heads h{tensor_io::load_checkpoint(path), ""};  // .pt/.pth: the config is an archive/extra record
  const auto meta = tensor_io::load_checkpoint_metadata(path);
  if (auto it = meta.find("binding_config"); it != meta.end()) h.binding_config_json = it->second;
  return h;
}

// Runs one expert over a batch of inputs of one modality: [B, d] float32.
at::Tensor run_expert(const experts::Expert& e, Modality m, const std::vector<MediaInput>& inputs) {
  std::vector<at::Tensor> items;
  items.reserve(inputs.size());
  for (auto& in : inputs) items.push_back(e.preprocess(m, in));
  return encode_items(e, m, items);
}

// "fp32" | "bf16": the option when given, else the manifest's; "" or "auto" = the CPU's default.
std::string resolve_precision(const std::string& option, const std::string& manifest) {
  const std::string& p = !option.empty() ? option : manifest;
  return p.empty() || p == "auto" ? std::string(default_precision()) : p;
}

std::string dim_message(const std::string& src, const std::string& f, const BundleExpert& e, int64_t got, int64_t want) {
  return src + ": " + f + " ('" + e.name + "', family " + e.family + ") gives " + std::to_string(got) +
         "-d embeddings but the heads take " + std::to_string(want);
}

// Multi-line build errors (rare) become one line.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
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
  b.precision_ = resolve_precision(options.precision, mf.precision);
  const std::string& precision = b.precision_;
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
    const std::string where =
        tensor_io::checkpoint_metadata_location(tensor_io::detect_checkpoint_format(heads_path), "binding_config");
    require(!heads.binding_config_json.empty(), src + ": field 'binding' is missing and " + mf.heads + " has no " + where +
                                                    " to take it from");
    config = binding::parse_binding_config(heads.binding_config_json, heads_path + " " + where);
  }
  if (mf.heads_layout == "folded")
    b.model_ = std::make_shared<binding::OmniBindModel>(binding::OmniBindModel::load_folded(heads.sd, config, prec));
  else
    b.model_ = std::make_shared<binding::OmniBindModel>(binding::OmniBindModel::load(heads.sd, config, prec));
  const binding::BindingConfig& cfg = b.model_->config();

  // Experts: validated now (names, files, family, and widths/modalities where the family's probe
  // knows them without reading weights), built on first use. One instance per distinct (family,
  // files, size), shared by the entries naming it.
  std::set<std::string> families;
  for (auto& [name, description] : experts::list_experts()) families.insert(name);
  std::map<std::string, std::shared_ptr<Instance>> instances;
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
    require(families.count(e.family) != 0, src + ": " + f + " ('" + e.name + "', family " + e.family +
                                               "): unknown expert family '" + e.family + "' (known: " +
                                               join(std::vector<std::string>(families.begin(), families.end())) + ")");
    std::string key = e.family + "\n" + o.weights + "\n" + o.config + "\n" + o.size + "\n" + o.bpe_vocab;
    for (auto& v : o.vocab_files) key += "\n" + v;
    auto it = instances.find(key);
    if (it == instances.end()) {
      auto inst = std::make_shared<Instance>();
      inst->family = e.family;
      inst->options = o;
      it = instances.emplace(key, std::move(inst)).first;
    }
    b.feeds_.push_back(check_feed(b, e, i, src, it->second));
  }

  if (b.modalities().empty()) {
    std::string why;
    for (auto& m : b.model_->modalities()) {
      std::vector<std::string> missing;
      for (auto& n : b.model_->required_inputs(m))
        if (!b.feed_for(n, experts::parse_modality(m))) missing.push_back(n);
      why += (why.empty() ? "" : "; ") + m + " lacks " + join(missing);
    }
    throw InputError(src + ": no modality has an expert for every space it needs (" + why + ")");
  }
  if (options.eager)
    for (Modality m : b.modalities()) b.experts_for(m);
  return b;
}

// One manifest entry -> a feed: its width (what the heads take) and the modalities it may serve,
// checked against the family's probe when that knows them.
ModelBundle::Feed ModelBundle::check_feed(const ModelBundle& b, const BundleExpert& e, size_t i, const std::string& src,
                                          std::shared_ptr<Instance> inst) {
  const std::string f = "experts[" + std::to_string(i) + "]";
  const binding::BindingConfig& cfg = b.model_->config();
  Feed feed;
  feed.entry = e;
  feed.index = i;
  feed.instance = std::move(inst);
  try {
    feed.want_dim = b.model_->input_dim(e.name);
  } catch (const InputError&) {
    feed.want_dim = cfg.find(e.name)->dim;  // an expert the heads never see (e.g. a Base/Large backbone)
  }
  const ExpertTraits t = probe_expert(e.family, feed.instance->options);
  for (auto& mod : e.modalities) {
    Modality m = experts::parse_modality(mod);
    require(t.modalities.empty() || std::find(t.modalities.begin(), t.modalities.end(), m) != t.modalities.end(),
            src + ": field '" + f + ".modalities' lists " + mod + " but family '" + e.family + "' (" + e.weights +
                ") does not embed it");
    feed.serves.push_back(m);
  }
  if (e.modalities.empty())
    feed.serves = !t.modalities.empty() ? t.modalities
                                        : std::vector<Modality>{Modality::Audio, Modality::Image, Modality::Text, Modality::Point};
  require(feed.want_dim <= 0 || t.dim <= 0 || t.dim == feed.want_dim, dim_message(src, f, e, t.dim, feed.want_dim));
  return feed;
}

const ModelBundle::Feed* ModelBundle::feed_for(const std::string& name, Modality m) const {
  for (auto& f : feeds_)
    if (f.entry.name == name && std::find(f.serves.begin(), f.serves.end(), m) != f.serves.end()) return &f;
  return nullptr;
}

// The feed's instance, built if needed, checked against what the entry promises (width, modality).
std::shared_ptr<const experts::Expert> ModelBundle::build(const Feed& f, Modality m) const {
  const std::string src = (dir_ / kBundleManifestFile).string();
  const std::string what = "experts[" + std::to_string(f.index) + "] ('" + f.entry.name + "', family " + f.entry.family + ")";
  std::shared_ptr<const experts::Expert> x;
  {
    std::lock_guard<std::mutex> lock(f.instance->mutex);
    if (!f.instance->expert) {
      try {
        f.instance->expert = experts::create_expert(f.instance->family, f.instance->options);
      } catch (const InputError& err) {
        throw InputError(src + ": " + what + ": " + one_line(err.what()));
      }
    }
    x = f.instance->expert;
  }
  require(x->covers(m), src + ": " + what + " (" + f.entry.weights + ") does not embed " + std::string(experts::modality_name(m)));
  require(f.want_dim <= 0 || x->dim() == f.want_dim,
          dim_message(src, "experts[" + std::to_string(f.index) + "]", f.entry, x->dim(), f.want_dim));
  return x;
}

const experts::Expert* ModelBundle::expert_for(const std::string& name, Modality m) const {
  const Feed* f = feed_for(name, m);
  return f ? build(*f, m).get() : nullptr;
}

std::vector<ModelBundle::ExpertRun> ModelBundle::experts_for(Modality m) const {
  check_covers(m);
  std::vector<ExpertRun> runs;
  std::map<const Instance*, size_t> seen;
  for (auto& n : model_->required_inputs(std::string(experts::modality_name(m)))) {
    const Feed* f = feed_for(n, m);
    auto it = seen.find(f->instance.get());
    if (it == seen.end()) {
      it = seen.emplace(f->instance.get(), runs.size()).first;
      runs.push_back(ExpertRun{build(*f, m), {}, f->instance->family});
    } else {
      build(*f, m);  // same instance: checks this entry's width/modality
    }
    runs[it->second].names.push_back(n);
  }
  return runs;
}

void ModelBundle::verify_experts() const {
  std::vector<Instance*> order;
  for (auto& f : feeds_)
    if (std::find(order.begin(), order.end(), f.instance.get()) == order.end()) order.push_back(f.instance.get());
  const auto served = modalities();
  for (Instance* inst : order) {
    bool was_built;
    {
      std::lock_guard<std::mutex> lock(inst->mutex);
      was_built = inst->expert != nullptr;
    }
    for (auto& f : feeds_) {
      if (f.instance.get() != inst) continue;
      for (Modality m : served) {
        auto need = model_->required_inputs(std::string(experts::modality_name(m)));
        if (std::find(need.begin(), need.end(), f.entry.name) != need.end() && feed_for(f.entry.name, m) == &f) build(f, m);
      }
    }
    if (!was_built) {
      std::lock_guard<std::mutex> lock(inst->mutex);
      inst->expert.reset();
    }
  }
}

size_t ModelBundle::release_experts() const {
  std::set<Instance*> done;
  size_t n = 0;
  for (auto& f : feeds_) {
    if (!done.insert(f.instance.get()).second) continue;
    std::lock_guard<std::mutex> lock(f.instance->mutex);
    if (f.instance->expert) ++n;
    f.instance->expert.reset();
  }
  return n;
}

size_t ModelBundle::release_experts(Modality m) const {
  std::set<Instance*> done;
  size_t n = 0;
  if (!covers(m)) return 0;
  for (auto& name : model_->required_inputs(std::string(experts::modality_name(m)))) {
    const Feed* f = feed_for(name, m);
    if (!f || !done.insert(f->instance.get()).second) continue;
    std::lock_guard<std::mutex> lock(f->instance->mutex);
    if (f->instance->expert) ++n;
    f->instance->expert.reset();
  }
  return n;
}

std::vector<std::string> ModelBundle::loaded_experts() const {
  std::set<std::string> names;
  for (auto& f : feeds_) {
    std::lock_guard<std::mutex> lock(f.instance->mutex);
    if (f.instance->expert) names.insert(f.entry.name);
  }
  return {names.begin(), names.end()};
}

size_t ModelBundle::loaded_instances() const {
  std::set<Instance*> done;
  size_t n = 0;
  for (auto& f : feeds_) {
    if (!done.insert(f.instance.get()).second) continue;
    std::lock_guard<std::mutex> lock(f.instance->mutex);
    n += f.instance->expert ? 1 : 0;
  }
  return n;
}

std::vector<Modality> ModelBundle::modalities() const {
  std::vector<Modality> out;
  for (auto& name : model_->modalities()) {
    Modality m = experts::parse_modality(name);
    bool ok = true;
    for (auto& n : model_->required_inputs(name)) ok = ok && feed_for(n, m) != nullptr;
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
  for (auto& run : experts_for(m)) {  // one expert feeding several names runs once
    at::Tensor x = run_expert(*run.expert, m, inputs);
    for (auto& n : run.names) out[n] = x;
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
