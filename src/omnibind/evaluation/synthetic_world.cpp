#include "omnibind/evaluation/synthetic_world.h"

#include "omnibind/binding/every_expert_config.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>

#include "omnibind/common/error.h"

namespace omnibind::evaluation {
namespace {

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

struct ExpertMaps {
  at::Tensor W;                             // [d, L]
  std::map<std::string, at::Tensor> gap;    // modality -> [d]
};

class Generator {
 public:
  explicit Generator(const SyntheticWorldOptions& o) : o_(o), gen_(at::detail::createCPUGenerator(o.seed)) {
    class_vecs_ = unit(at::randn({o.classes, o.latent_dim}, gen_));
    family_vecs_ = unit(at::randn({3, o.latent_dim}, gen_));
    for (auto& e : o.experts) {
      ExpertMaps m;
      m.W = at::randn({e.dim, o.latent_dim}, gen_) / std::sqrt(double(o.latent_dim));
      for (auto& mod : e.modalities) m.gap[mod] = unit(at::randn({e.dim}, gen_)) * o.modality_gap;
      maps_[e.name] = m;
    }
  }

  // Instance latents of `labels`.
  at::Tensor instances(const at::Tensor& labels) {
    return unit(class_vecs_.index_select(0, labels) + o_.spread * at::randn({labels.size(0), o_.latent_dim}, gen_) /
                                                          std::sqrt(double(o_.latent_dim)));
  }
  at::Tensor text_latents(const at::Tensor& z, const at::Tensor& source) {
    return unit(z + o_.family_bias * family_vecs_.index_select(0, source.clamp_min(0)));
  }

  // Every expert covering `modality` embeds the items (z [N, L], labels [N], source [N] for texts).
  std::map<std::string, at::Tensor> embed(const std::string& modality, const at::Tensor& z, const at::Tensor& labels,
                                          const at::Tensor& source) {
    std::map<std::string, at::Tensor> out;
    const int64_t n = z.size(0);
    for (auto& e : o_.experts) {
      if (std::find(e.modalities.begin(), e.modalities.end(), modality) == e.modalities.end()) continue;
      const ExpertMaps& m = maps_.at(e.name);
      const int64_t good_to = e.good_to < 0 ? o_.classes : e.good_to;
      at::Tensor good = labels.ge(e.good_from).logical_and(labels.lt(good_to));
      at::Tensor sigma = at::where(good, at::full({n}, o_.good_noise), at::full({n}, o_.bad_noise));
      if (modality == "text" && source.defined())
        sigma = sigma + source.ne(e.family).to(at::kFloat) * o_.off_family_noise;
      at::Tensor noise = at::randn({n, e.dim}, gen_) / std::sqrt(double(e.dim));
      out[e.name] = unit(unit(at::matmul(z, m.W.t())) + m.gap.at(modality) + sigma.unsqueeze(1) * noise).contiguous();
    }
    return out;
  }

  at::Tensor randint(int64_t hi, int64_t n) { return at::randint(hi, {n}, gen_); }

 private:
  const SyntheticWorldOptions& o_;
  at::Generator gen_;
  at::Tensor class_vecs_, family_vecs_;
  std::map<std::string, ExpertMaps> maps_;
};

}  // namespace

std::vector<SyntheticExpert> default_synthetic_experts(int64_t classes) {
  const int64_t half = classes / 2;
  return {{"AT_A", {"audio", "text"}, 24, 0, half, 0},
          {"AT_B", {"audio", "text"}, 20, half, -1, 0},
          {"U3D", {"point", "image", "text"}, 24, 0, -1, 2},
          {"CLIP", {"image", "text"}, 32, 0, -1, 1}};
}

SyntheticWorld make_synthetic_world(const SyntheticWorldOptions& options) {
  SyntheticWorld w;
  w.options = options;
  if (w.options.experts.empty()) w.options.experts = default_synthetic_experts(options.classes);
  const SyntheticWorldOptions& o = w.options;
  require(o.classes >= 2 && o.latent_dim >= 2 && o.train_rows >= 1 && o.eval_tuples >= 1,
          "synthetic world: classes, latent_dim, train_rows and eval_tuples must be positive");
  for (int64_t c = 0; c < o.classes; ++c) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "class%02lld", static_cast<long long>(c));
    w.classes.push_back(buf);
  }
  Generator g(o);
  at::NoGradGuard no_grad;
  // Training pools: unpaired, independent draws per modality.
  for (auto& m : binding::all_modalities()) {
    ModalityItems items;
    items.label = g.randint(o.classes, o.train_rows);
    at::Tensor z = g.instances(items.label);
    if (m == "text") {
      items.source = g.randint(3, o.train_rows);
      z = g.text_latents(z, items.source);
    }
    items.experts = g.embed(m, z, items.label, items.source);
    w.train[m] = std::move(items);
  }
  // Evaluation pool: tuples sharing one instance latent across modalities.
  w.eval.classes = w.classes;
  w.eval.num_classes = o.classes;
  at::Tensor labels = g.randint(o.classes, o.eval_tuples);
  at::Tensor z = g.instances(labels);
  at::Tensor pair = at::arange(o.eval_tuples, at::kLong);
  for (auto& m : binding::all_modalities()) {
    ModalityItems items;
    items.label = labels;
    items.pair = pair;
    at::Tensor zm = z;
    if (m == "text") {
      items.source = g.randint(3, o.eval_tuples);
      zm = g.text_latents(z, items.source);
    }
    items.experts = g.embed(m, zm, labels, items.source);
    w.eval.modalities[m] = std::move(items);
  }
  // Prompts: per class, prompts_per_class texts cycling over the families (a prompt ensemble).
  const int64_t P = o.classes * o.prompts_per_class;
  at::Tensor pc = at::arange(P, at::kLong).floor_divide(o.prompts_per_class);
  at::Tensor fam = at::arange(P, at::kLong).remainder(3);
  at::Tensor pz = g.text_latents(g.instances(pc), fam);
  w.eval.prompts = g.embed("text", pz, pc, fam);
  w.eval.prompt_class = pc;
  return w;
}

binding::BindingConfig SyntheticWorld::binding_config(int64_t heads, int64_t hidden) const {
  std::vector<binding::ExpertSpec> experts;
  for (auto& e : options.experts) experts.push_back({e.name, e.modalities, e.dim, {}});
  // Routers read every expert that embeds the modality (text: all text experts).
  return binding::every_expert_config("synthetic", std::move(experts), options.backbone, heads, hidden, {32, 16});
}

}  // namespace omnibind::evaluation
