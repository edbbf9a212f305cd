// Binding training, checked against independent computations: the written checkpoint reproduces the
// trainer's own eval-mode torch::nn forward through the inference model (1e-5); the text router
// learns to route texts to the expert family their source names (L_dec), and retrieval through the
// trained heads is far above chance. (CLI bad input: train_cli_test.cpp.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

// AT (audio, text) and IX (image, text) are the projected text experts: the text router chooses
// between an audio-family slot (AT) and an image-family slot (IX). IT is the backbone (target only).
const char* kFitConfig = R"({
  "experts": {"AT": {"modalities": ["audio", "text"], "dim": 12},
              "IT": {"modalities": ["image", "text"], "dim": 16},
              "IX": {"modalities": ["image", "text"], "dim": 12}},
  "backbone": "IT", "heads_per_space": 2, "projector_hidden": 32, "router_hidden": [16, 8], "text_temperature": 10,
  "router_inputs": {"audio": ["AT"], "image": ["IT"], "text": ["AT", "IT"]}})";

struct FitWorld {
  toy::World world{21};
  FitWorld() {
    world.maps.erase("PI");
    world.maps["IX"] = at::randn({12, world.latent});
    for (const char* key : {"IX/image", "IX/text"}) {
      at::Tensor g = at::randn({12});
      world.gaps[key] = g / g.norm() * 0.4;
    }
  }
  // Texts of classes 0-3 describe sounds (source 0), of classes 4-7 images (source 1).
  static at::Tensor source_of(const at::Tensor& labels) { return labels.ge(4).to(at::kLong); }
  void write_pool(const fs::path& dir, int64_t rows) const {
    PoolManifest m;
    m.experts = {{"AT", {"audio", "text"}, 12}, {"IT", {"image", "text"}, 16}, {"IX", {"image", "text"}, 12}};
    m.backbone = "IT";
    for (int64_t c = 0; c < world.classes; ++c) m.classes.push_back("class" + std::to_string(c));
    PoolWriter w(dir, m);
    for (const char* mod : {"audio", "image", "text"}) {
      at::Tensor labels = at::randint(world.classes, {rows}, at::kLong);
      std::map<std::string, at::Tensor> cols{{"label", labels}};
      if (std::string(mod) == "text") cols["source"] = source_of(labels);
      w.add(mod, world.embed(mod, labels), cols);
    }
    w.finish();
  }
};

struct Fit {
  fs::path dir;
  FitWorld fw;
  binding::BindingConfig config = binding::parse_binding_config(kFitConfig, "fit");
  NamedTensors state;
};

// margin: TrainOptions::decoupling_margin (the default 0.5, or 1 = plain cross-entropy L_dec); target:
// TrainOptions::uncovered_target (the default "text", or "image").
Fit* make_fit(double margin, const std::string& target = TrainOptions{}.uncovered_target) {
  {
    auto* f = new Fit;
    f->dir = testkit::make_temp_dir("trainfit");
    f->fw.write_pool(f->dir / "pool", 320);
    EmbeddingPool pool = EmbeddingPool::open(f->dir / "pool");
    TupleSet tuples = mine_tuples(pool, MiningOptions{});
    TrainOptions o;
    set_router_objective(o, "paper");  // these tests check OmniBind's L_dec (the default objective has none)
    o.seed = 3;
    o.threads = 1;
    o.projector_epochs = 6;
    o.router_epochs = 8;
    o.batch = 64;
    o.decoupling_margin = margin;
    o.uncovered_target = target;
    // These tests check what L_dec trains into the text router. By default router validation may shrink the text
    // router back to uniform routing when the split does not help held-out retrieval (it does not in this small
    // world); keeping L_dec's split is the option that promises it.
    o.router_text_keeps_decoupling = true;
    f->state = train_binding(pool, tuples, f->config, o);
    return f;
  }
}
const Fit& fit() {
  static Fit* f = make_fit(TrainOptions{}.decoupling_margin);
  return *f;
}
const Fit& fit_plain_dec() {
  static Fit* f = make_fit(1.0);
  return *f;
}
const Fit& fit_image_targets() {
  static Fit* f = make_fit(TrainOptions{}.decoupling_margin, "image");
  return *f;
}

// The text router's mean weight on the AT slot for texts of source 0 (audio) and 1 (image).
std::pair<double, double> at_weight_by_source(const binding::OmniBindModel& model, const FitWorld& world) {
  at::manual_seed(6);
  at::Tensor labels = at::arange(240, at::kLong).remainder(8);
  auto text = world.world.embed("text", labels);
  at::Tensor w = model.routing_weights("text", {{"AT", text.at("AT")}, {"IT", text.at("IT")}, {"IX", text.at("IX")}});
  at::Tensor src = FitWorld::source_of(labels);
  return {w.select(1, 0).index_select(0, src.eq(0).nonzero().squeeze(1)).mean().item<double>(),
          w.select(1, 0).index_select(0, src.eq(1).nonzero().squeeze(1)).mean().item<double>()};
}

std::map<std::string, at::Tensor> state_map(const NamedTensors& s) { return {s.begin(), s.end()}; }

// Loads prefix* tensors into a freshly built Sequential and puts it in eval mode.
void load_into(torch::nn::Sequential& m, const std::string& prefix, const std::map<std::string, at::Tensor>& st) {
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) p.value().copy_(st.at(prefix + p.key()));
  for (auto& b : m->named_buffers()) b.value().copy_(st.at(prefix + b.key()));
  m->eval();
}

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

binding::OmniBindModel load_fit(const Fit& f) {
  tensor_io::StateDict sd("fit");
  for (const auto& [n, x] : f.state) sd.add(n, tensor_io::from_tensor(x.contiguous()));
  return binding::OmniBindModel::load(sd, f.config);
}

TEST(TrainerFit, CheckpointReproducesTheTrainersEvalForward) {
  const Fit& f = fit();
  const auto st = state_map(f.state);
  tensor_io::StateDict sd("fit");
  for (const auto& [n, x] : f.state) sd.add(n, tensor_io::from_tensor(x.contiguous()));
  auto model = binding::OmniBindModel::load(sd, f.config);
  at::manual_seed(5);
  at::Tensor labels = at::arange(64, at::kLong).remainder(8);
  auto text = f.fw.world.embed("text", labels);
  // Slots of text: the projected experts covering text, in config order (AT = projs.0-1, IX = projs.2-3).
  const int64_t K = f.config.heads_per_space;
  std::vector<at::Tensor> slots;
  int64_t space = 0;
  torch::NoGradGuard g;
  for (const auto* e : f.config.projected_experts()) {
    if (e->covers("text")) {
      at::Tensor sum;
      for (int64_t k = 0; k < K; ++k) {
        torch::nn::Sequential head(torch::nn::Linear(e->dim, 32), torch::nn::BatchNorm1d(32), torch::nn::ReLU(),
                                   torch::nn::Linear(32, 16), torch::nn::BatchNorm1d(16));
        load_into(head, "projs." + std::to_string(space * K + k) + ".Head2.mlps.", st);
        at::Tensor h = unit(head->forward(text.at(e->name)));
        sum = sum.defined() ? sum + h : h;
      }
      slots.push_back(sum / static_cast<double>(K));
    }
    ++space;
  }
  ASSERT_EQ(slots.size(), 2u);
  torch::nn::Sequential router(torch::nn::Linear(12 + 16, 16), torch::nn::BatchNorm1d(16), torch::nn::ReLU(),
                               torch::nn::Linear(16, 8), torch::nn::BatchNorm1d(8), torch::nn::Tanh(), torch::nn::Linear(8, 2));
  load_into(router, "T_enc_router.router.", st);
  at::Tensor w = at::softmax(at::sigmoid(router->forward(at::cat({text.at("AT"), text.at("IT")}, 1))) * 10.0, -1);
  at::Tensor expected = unit((at::stack(slots, 1) * w.unsqueeze(2)).sum(1));
  const std::map<std::string, at::Tensor> in{{"AT", text.at("AT")}, {"IT", text.at("IT")}, {"IX", text.at("IX")}};
  at::Tensor got = model.embed("text", in);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5);
  EXPECT_LT((model.routing_weights("text", in) - w).abs().max().item<double>(), 1e-5);
}

TEST(TrainerFit, TextRouterFollowsSourceFamilyAndRetrievalIsFarAboveChance) {
  const Fit& f = fit();
  auto model = load_fit(f);
  const auto [at_on_audio_texts, at_on_image_texts] = at_weight_by_source(model, f.fw);
  // L_dec with the default margin (0.5): each source's texts are represented mainly (mass > 0.5) by their family.
  EXPECT_GT(at_on_audio_texts, 0.5);
  EXPECT_LT(at_on_image_texts, 0.5);
  // Class-level retrieval text->image and audio->image through the unified space (chance 1/8).
  at::manual_seed(6);
  at::Tensor labels = at::arange(240, at::kLong).remainder(8);
  auto text = f.fw.world.embed("text", labels);
  auto image = f.fw.world.embed("image", labels);
  auto audio = f.fw.world.embed("audio", labels);
  std::map<std::string, at::Tensor> tin{{"AT", text.at("AT")}, {"IT", text.at("IT")}, {"IX", text.at("IX")}};
  at::Tensor ut = model.embed("text", tin), ui = model.embed("image", {{"IT", image.at("IT")}, {"IX", image.at("IX")}});
  at::Tensor ua = model.embed("audio", {{"AT", audio.at("AT")}});
  auto top1 = [&](const at::Tensor& q, const at::Tensor& d) {
    return labels.index_select(0, at::mm(q, d.t()).argmax(1)).eq(labels).to(at::kDouble).mean().item<double>();
  };
  EXPECT_GT(top1(ut, ui), 0.6);
  EXPECT_GT(top1(ua, ui), 0.5);
}

// With image targets for audio (the pre-2026-11-28 default) AT's audio slot lands in the image region, so
// only L_dec keeps image texts off it and the split by family is wide. With text targets (the default)
// the AT slot suits every text and the split narrows to what the margin asks for (measured 0.57 vs 0.47).
TEST(TrainerFit, WithImageTargetsTheTextRouterSplitsFamiliesWidely) {
  const Fit& f = fit_image_targets();
  auto [on_audio, on_image] = at_weight_by_source(load_fit(f), f.fw);
  EXPECT_GT(on_audio, 0.5);
  EXPECT_LT(on_image, 0.5);
  EXPECT_GT(on_audio - on_image, 0.15) << on_audio << " vs " << on_image;
}

// Plain cross-entropy L_dec (decoupling_margin 1) keeps pulling: a much sharper split by source family.
TEST(TrainerFit, PlainCrossEntropyDecouplingSplitsFamiliesSharply) {
  const Fit& f = fit_plain_dec();
  const auto [on_audio, on_image] = at_weight_by_source(load_fit(f), f.fw);
  EXPECT_GT(on_audio - on_image, 0.3) << on_audio << " vs " << on_image;
}

}  // namespace
}  // namespace omnibind::training
