#include "omnibind/training/world_family.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::training {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kModalities = {"audio", "image", "point", "text"};
// Source family f is read best by spaces covering this modality (0 sound -> audio, 1 look -> image, 2 shape -> point).
const char* const kFamilyModality[3] = {"audio", "image", "point"};

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Structure draws: splitmix64, the same numbers on every platform (std distributions are not portable).
class Draw {
 public:
  explicit Draw(uint64_t seed) : s_(mix(seed, 0x5EED)) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int64_t integer(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1)); }  // [lo, hi]
  bool chance(double p) { return uniform(0, 1) < p; }
  int64_t dim() { return 8 * integer(2, 16); }  // 16..128, multiples of 8
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(integer(0, static_cast<int64_t>(v.size()) - 1))]; }
  // A random permutation of 0..n-1 (Fisher-Yates).
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(integer(0, i))]);
    return p;
  }

 private:
  uint64_t s_;
};

struct Levels {
  double good, bad, off_family;
};

// Per-class sigma: `good` (x jitter) on the classes in `reliable`, `bad` (x jitter) elsewhere.
std::vector<double> class_noise(Draw& d, int64_t classes, const std::vector<bool>& reliable, const Levels& l) {
  std::vector<double> out(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) out[static_cast<size_t>(c)] = (reliable[static_cast<size_t>(c)] ? l.good : l.bad) * d.uniform(0.85, 1.15);
  return out;
}
std::vector<bool> all_classes(int64_t classes) { return std::vector<bool>(static_cast<size_t>(classes), true); }
std::vector<bool> block(int64_t classes, int64_t part, int64_t parts) {
  std::vector<bool> r(static_cast<size_t>(classes), false);
  for (int64_t c = part * classes / parts; c < (part + 1) * classes / parts; ++c) r[static_cast<size_t>(c)] = true;
  return r;
}
std::vector<bool> random_subset(Draw& d, int64_t classes, double fraction) {
  std::vector<bool> r(static_cast<size_t>(classes), false);
  auto p = d.permutation(classes);
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::lround(fraction * static_cast<double>(classes))));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(p[static_cast<size_t>(i)])] = true;
  return r;
}
// Per-source sigma: near 0 for the families whose modality the space covers, off_family (x jitter) else.
std::vector<double> source_noise(Draw& d, const std::vector<std::string>& modalities, const Levels& l) {
  std::vector<double> out(3);
  for (int f = 0; f < 3; ++f)
    out[static_cast<size_t>(f)] = has(modalities, kFamilyModality[f]) ? l.off_family * d.uniform(0.0, 0.15) : l.off_family * d.uniform(0.7, 1.3);
  return out;
}

WorldSpace space(Draw& d, std::string name, std::vector<std::string> modalities, int64_t dim, std::vector<double> noise,
                 const Levels& l, double gap) {
  WorldSpace s;
  s.name = std::move(name);
  s.modalities = std::move(modalities);
  s.dim = dim;
  s.class_noise = std::move(noise);
  s.source_noise = source_noise(d, s.modalities, l);
  s.gap = gap;
  return s;
}

// The binding config of a spec. "base": like the OmniBind-Base preset (backbone only a target, routers read one
// specialist per modality, text the first audio, image and point specialists); "every": every space is a slot
// (backbone too) and every router reads every space that embeds its modality.
binding::BindingConfig make_config(const WorldSpec& w, const std::string& routing, int64_t heads, int64_t hidden,
                                   std::vector<int64_t> router_hidden) {
  binding::BindingConfig c;
  c.name = "world-" + w.split + "-" + std::to_string(w.index);
  for (const auto& s : w.spaces) c.experts.push_back({s.name, s.modalities, s.dim, {}});
  c.backbone = w.backbone;
  c.heads_per_space = heads;
  c.projector_hidden = hidden;
  c.router_hidden = std::move(router_hidden);
  c.text_temperature = 10.0;
  auto first = [&](const std::string& m, const std::vector<std::string>& also) -> std::string {
    for (const auto& s : w.spaces)
      if (s.name != w.backbone && has(s.modalities, m) && std::all_of(also.begin(), also.end(), [&](auto& a) { return has(s.modalities, a); }))
        return s.name;
    return "";
  };
  bool base = routing == "base";
  for (const auto& m : kModalities)
    if (first(m, {}).empty()) base = false;  // a modality only the backbone covers needs the backbone slot
  if (base) {
    c.backbone_in_output = false;
    for (const auto& m : {"audio", "image", "point"}) c.router_inputs[m] = {first(m, {})};
    for (const auto& m : {"audio", "image", "point"}) {
      std::string n = first("text", {m});
      if (!n.empty() && !has(c.router_inputs["text"], n)) c.router_inputs["text"].push_back(n);
    }
    if (c.router_inputs["text"].empty()) c.router_inputs["text"] = {first("text", {})};
  } else {
    c.backbone_in_output = true;
    for (const auto& m : kModalities)
      for (const auto& s : w.spaces)
        if (has(s.modalities, m)) c.router_inputs[m].push_back(s.name);
  }
  c.validate();
  return c;
}

void draw_pools(Draw& d, WorldSpec& w, int64_t lo, int64_t hi) {
  for (const auto& m : kModalities) w.train_rows[m] = d.integer(lo, hi);
}

}  // namespace

std::string world_split_name(WorldSplit split) { return split == WorldSplit::Tuning ? "tuning" : "heldout"; }

WorldSplit parse_world_split(const std::string& name) {
  if (name == "tuning") return WorldSplit::Tuning;
  if (name == "heldout" || name == "held-out") return WorldSplit::HeldOut;
  throw InputError("unknown world split '" + name + "' (expected tuning or heldout)");
}

const WorldSpace* WorldSpec::find(const std::string& name) const {
  for (const auto& s : spaces)
    if (s.name == name) return &s;
  return nullptr;
}

WorldSpec base_like_world_spec(uint64_t seed) {
  Draw d(seed);
  WorldSpec w;
  w.split = "custom";
  w.seed = seed;
  w.shape = "base-like";
  w.classes = 40;
  w.latent_dim = 32;
  w.spread = d.uniform(0.5, 0.7);
  w.family_bias = d.uniform(0.4, 0.6);
  for (const auto& m : kModalities) w.modality_noise[m] = d.uniform(0.9, 1.1);
  const Levels l{d.uniform(0.2, 0.3), d.uniform(1.1, 1.5), d.uniform(0.6, 1.0)};
  const int64_t C = w.classes;
  // Backbone: 64-d image-text, reliable everywhere, reads look captions.
  w.spaces.push_back(space(d, "BB", {"image", "text"}, 64, class_noise(d, C, all_classes(C), l), l, d.uniform(0.4, 0.8)));
  // Three audio-text spaces, each reliable on a different third of the classes.
  for (int64_t i = 0; i < 3; ++i)
    w.spaces.push_back(space(d, "AT" + std::to_string(i + 1), {"audio", "text"}, 8 * d.integer(4, 16),
                             class_noise(d, C, block(C, i, 3), l), l, d.uniform(0.4, 0.8)));
  const Levels mid{l.good * 1.8, l.bad, l.off_family};
  w.spaces.push_back(space(d, "IT1", {"image", "text"}, 8 * d.integer(4, 16), class_noise(d, C, all_classes(C), mid), l, d.uniform(0.4, 0.8)));
  w.spaces.push_back(space(d, "PIT1", {"image", "point", "text"}, 8 * d.integer(4, 16), class_noise(d, C, all_classes(C), mid), l,
                           d.uniform(0.4, 0.8)));
  // ImageBind-like: audio-image-text, middling everywhere (its sound/look captions read well, shape ones not).
  const Levels ib{l.good * 2.5, l.bad, l.off_family};
  w.spaces.push_back(space(d, "IB", {"audio", "image", "text"}, 8 * d.integer(4, 16), class_noise(d, C, all_classes(C), ib), l,
                           d.uniform(0.4, 0.8)));
  w.backbone = "BB";
  for (const auto& m : kModalities) w.train_rows[m] = 6000;  // 24,000 tuples: one per anchor
  w.eval_tuples = 2000;
  w.prompts_per_class = 3;
  w.config = make_config(w, "base", 7, 256, {64, 32});
  return w;
}

WorldSpec random_world_spec(uint64_t seed) {
  Draw d(seed);
  WorldSpec w;
  w.split = "custom";
  w.seed = seed;
  w.shape = "random";
  w.classes = d.integer(8, 64);
  w.latent_dim = d.integer(16, 48);
  w.spread = d.uniform(0.4, 0.9);
  w.family_bias = d.uniform(0.2, 0.7);
  for (const auto& m : kModalities) w.modality_noise[m] = d.uniform(0.7, 1.3);
  const Levels l{d.uniform(0.15, 0.45), d.uniform(0.8, 1.8), d.uniform(0.3, 1.2)};
  const int64_t C = w.classes;
  auto gap = [&] { return d.uniform(0.2, 1.0); };
  auto reliability = [&](double lo) { return random_subset(d, C, d.uniform(lo, 1.0)); };
  // Backbone: image-text, reliable (good noise x 0.8-1.6) everywhere.
  const Levels bb{l.good * d.uniform(0.8, 1.6), l.bad, l.off_family};
  w.spaces.push_back(space(d, "BB", {"image", "text"}, d.pick<int64_t>({32, 48, 64, 96, 128}), class_noise(d, C, all_classes(C), bb), l, gap()));
  w.backbone = "BB";
  // Audio-text spaces: a partition of the classes into blocks, or random subsets.
  const int64_t n_audio = d.integer(1, 3);
  const bool partition = n_audio > 1 && d.chance(0.6);
  for (int64_t i = 0; i < n_audio; ++i) {
    std::vector<bool> r = partition ? block(C, i, n_audio) : reliability(0.3);
    w.spaces.push_back(space(d, "AT" + std::to_string(i + 1), {"audio", "text"}, d.dim(), class_noise(d, C, r, l), l, gap()));
  }
  const int64_t n_image = d.integer(0, 2);
  for (int64_t i = 0; i < n_image; ++i)
    w.spaces.push_back(space(d, "IT" + std::to_string(i + 1), {"image", "text"}, d.dim(), class_noise(d, C, reliability(0.4), l), l, gap()));
  const int64_t n_point = d.integer(1, 2);
  const std::vector<std::vector<std::string>> point_kinds = {{"point", "text"}, {"image", "point", "text"}, {"image", "point"}};
  for (int64_t i = 0; i < n_point; ++i) {
    const auto& mods = d.pick(point_kinds);
    std::string name = mods.size() == 3 ? "PIT" : mods[0] == "image" ? "PI" : "PT";
    w.spaces.push_back(space(d, name + std::to_string(i + 1), mods, d.dim(), class_noise(d, C, reliability(0.4), l), l, gap()));
  }
  if (d.chance(0.5)) {
    const Levels ib{l.good * d.uniform(1.5, 3.0), l.bad, l.off_family};
    w.spaces.push_back(space(d, "IB", {"audio", "image", "text"}, d.dim(), class_noise(d, C, all_classes(C), ib), l, gap()));
  }
  if (d.chance(0.25))
    w.spaces.push_back(space(d, "AI1", {"audio", "image"}, d.dim(), class_noise(d, C, reliability(0.4), l), l, gap()));
  draw_pools(d, w, 800, 4000);
  w.eval_tuples = d.integer(800, 1600);
  w.prompts_per_class = 3;
  const std::string routing = d.chance(0.5) ? "base" : "every";
  const int64_t heads = d.integer(2, 5);
  const int64_t hidden = d.pick<int64_t>({128, 256, 512});
  std::vector<int64_t> rh = d.chance(0.5) ? std::vector<int64_t>{32, 16} : std::vector<int64_t>{64, 32};
  w.config = make_config(w, routing, heads, hidden, rh);
  return w;
}

WorldSpec world_spec(WorldSplit split, int64_t index) {
  const int64_t n = split == WorldSplit::Tuning ? kTuningWorlds : kHeldOutWorlds;
  if (index < 0 || index >= n)
    throw InputError("world " + world_split_name(split) + " " + std::to_string(index) + ": index out of range [0, " +
                     std::to_string(n) + ")");
  const uint64_t seed = (split == WorldSplit::Tuning ? kTuningSeedBase : kHeldOutSeedBase) + static_cast<uint64_t>(index);
  WorldSpec w = index % 4 == 0 ? base_like_world_spec(seed) : random_world_spec(seed);
  w.split = world_split_name(split);
  w.index = index;
  w.config.name = "world-" + w.split + "-" + std::to_string(index);
  return w;
}

void scale_world_rows(WorldSpec& spec, double factor) {
  require(factor > 0, "world rows scale must be positive");
  for (auto& [m, n] : spec.train_rows) n = std::max<int64_t>(16, std::llround(static_cast<double>(n) * factor));
  spec.eval_tuples = std::max<int64_t>(16, std::llround(static_cast<double>(spec.eval_tuples) * factor));
}

std::string world_spec_to_json(const WorldSpec& w) {
  nlohmann::ordered_json j;
  j["format"] = "omnibind-world";
  j["split"] = w.split;
  j["index"] = w.index;
  j["seed"] = w.seed;
  j["shape"] = w.shape;
  j["classes"] = w.classes;
  j["latent_dim"] = w.latent_dim;
  j["spread"] = w.spread;
  j["family_bias"] = w.family_bias;
  j["modality_noise"] = w.modality_noise;
  j["backbone"] = w.backbone;
  nlohmann::ordered_json spaces = nlohmann::ordered_json::array();
  for (const auto& s : w.spaces) {
    nlohmann::ordered_json x;
    x["name"] = s.name;
    x["modalities"] = s.modalities;
    x["dim"] = s.dim;
    x["gap"] = s.gap;
    x["class_noise"] = s.class_noise;
    x["source_noise"] = s.source_noise;
    spaces.push_back(x);
  }
  j["spaces"] = spaces;
  j["train_rows"] = w.train_rows;
  j["eval_tuples"] = w.eval_tuples;
  j["prompts_per_class"] = w.prompts_per_class;
  j["config"] = nlohmann::ordered_json::parse(binding::binding_config_to_json(w.config));
  return j.dump(2);
}

namespace {

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

// The latent world of a spec and its embedders; every draw goes through one seeded generator in a fixed order.
class Sampler {
 public:
  explicit Sampler(const WorldSpec& w) : w_(w), gen_(at::detail::createCPUGenerator(mix(w.seed, 0xDA7A))) {
    const int64_t L = w.latent_dim;
    class_vecs_ = unit(at::randn({w.classes, L}, gen_));
    family_vecs_ = unit(at::randn({3, L}, gen_));
    for (const auto& s : w.spaces) {
      maps_[s.name] = at::randn({s.dim, L}, gen_) / std::sqrt(static_cast<double>(L));
      for (const auto& m : s.modalities) gaps_[s.name + "/" + m] = unit(at::randn({s.dim}, gen_)) * s.gap;
      class_noise_[s.name] = at::tensor(s.class_noise, at::dtype(at::kDouble)).to(at::kFloat);
      source_noise_[s.name] = at::tensor(s.source_noise, at::dtype(at::kDouble)).to(at::kFloat);
    }
  }
  at::Tensor labels(int64_t n) { return at::randint(w_.classes, {n}, gen_); }
  at::Tensor sources(int64_t n) { return at::randint(3, {n}, gen_); }
  at::Tensor instances(const at::Tensor& labels) {
    const int64_t L = w_.latent_dim;
    return unit(class_vecs_.index_select(0, labels) + w_.spread * at::randn({labels.size(0), L}, gen_) / std::sqrt(static_cast<double>(L)));
  }
  at::Tensor text_latents(const at::Tensor& z, const at::Tensor& source) {
    return unit(z + w_.family_bias * family_vecs_.index_select(0, source));
  }
  // Every space covering `modality` embeds the items (z [N, L], labels [N], source [N] for texts).
  std::map<std::string, at::Tensor> embed(const std::string& modality, const at::Tensor& z, const at::Tensor& labels,
                                          const at::Tensor& source) {
    std::map<std::string, at::Tensor> out;
    const double scale = w_.modality_noise.count(modality) ? w_.modality_noise.at(modality) : 1.0;
    for (const auto& s : w_.spaces) {
      if (!has(s.modalities, modality)) continue;
      at::Tensor sigma = class_noise_.at(s.name).index_select(0, labels);
      if (modality == "text") sigma = sigma + source_noise_.at(s.name).index_select(0, source);
      at::Tensor noise = at::randn({z.size(0), s.dim}, gen_) / std::sqrt(static_cast<double>(s.dim));
      out[s.name] = unit(unit(at::mm(z, maps_.at(s.name).t())) + gaps_.at(s.name + "/" + modality) +
                         (scale * sigma).unsqueeze(1) * noise).contiguous();
    }
    return out;
  }

 private:
  const WorldSpec& w_;
  at::Generator gen_;
  at::Tensor class_vecs_, family_vecs_;
  std::map<std::string, at::Tensor> maps_, gaps_, class_noise_, source_noise_;
};

PoolManifest manifest_of(const WorldSpec& w) {
  PoolManifest m;
  for (const auto& s : w.spaces) m.experts.push_back({s.name, s.modalities, s.dim});
  m.backbone = w.backbone;
  for (int64_t c = 0; c < w.classes; ++c) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "class%02lld", static_cast<long long>(c));
    m.classes.push_back(buf);
  }
  return m;
}

}  // namespace

WorldFiles write_world(const WorldSpec& spec, const fs::path& dir) {
  require(spec.classes >= 2 && spec.latent_dim >= 2 && spec.eval_tuples >= 1 && !spec.spaces.empty(),
          "world " + spec.split + " " + std::to_string(spec.index) + ": needs classes >= 2, spaces and evaluation tuples");
  for (const auto& s : spec.spaces)
    require(static_cast<int64_t>(s.class_noise.size()) == spec.classes && s.source_noise.size() == 3,
            "world: space '" + s.name + "' needs one class_noise per class and three source_noise values");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir.string() + ": cannot create the directory (" + ec.message() + ")");
  WorldFiles files{dir / "train", dir / "eval", dir / "config.json", dir / "world.json"};
  at::NoGradGuard no_grad;
  Sampler g(spec);
  const PoolManifest manifest = manifest_of(spec);
  {
    // Training pools: unpaired, each modality its own items and size; texts carry their source.
    PoolWriter writer(files.train, manifest);
    for (const auto& m : kModalities) {
      const int64_t n = spec.train_rows.count(m) ? spec.train_rows.at(m) : 0;
      if (n <= 0) continue;
      at::Tensor labels = g.labels(n), z = g.instances(labels), source;
      std::map<std::string, at::Tensor> columns{{"label", labels}};
      if (m == "text") {
        source = g.sources(n);
        z = g.text_latents(z, source);
        columns["source"] = source;
      }
      writer.add(m, g.embed(m, z, labels, source), columns);
    }
    writer.finish();
  }
  {
    // Evaluation pool: true tuples (one instance latent shared by the four modalities) + class prompts.
    PoolWriter writer(files.eval, manifest);
    const int64_t n = spec.eval_tuples;
    at::Tensor labels = g.labels(n), z = g.instances(labels), pair = at::arange(n, at::kLong);
    at::Tensor source = g.sources(n);
    for (const auto& m : kModalities) {
      std::map<std::string, at::Tensor> columns{{"label", labels}, {"pair", pair}};
      at::Tensor zm = z;
      if (m == "text") {
        zm = g.text_latents(z, source);
        columns["source"] = source;
      }
      writer.add(m, g.embed(m, zm, labels, source), columns);
    }
    const int64_t P = spec.classes * spec.prompts_per_class;
    at::Tensor pc = at::arange(P, at::kLong).floor_divide(spec.prompts_per_class);
    at::Tensor fam = at::arange(P, at::kLong).remainder(3);
    writer.set_prompts(g.embed("text", g.text_latents(g.instances(pc), fam), pc, fam), pc);
    writer.finish();
  }
  write_bytes_atomically(files.config.string(), binding::binding_config_to_json(spec.config) + "\n");
  write_bytes_atomically(files.description.string(), world_spec_to_json(spec) + "\n");
  return files;
}

}  // namespace omnibind::training
