// The router bank (training/router_bank.h) against the routers of binding_trainer's autograd loop: torch::nn
// routers, sigmoid, text temperature, softmax over the slots, the weighted slot sum, normalisation, symmetric
// InfoNCE over every modality pair and the clipped L_dec of the text router, with autograd and
// torch::optim::AdamW. Same loss and gradients (against a float64 autograd reference), same routers after
// several AdamW steps, independent of the thread count; and train_binding gives the same routers with the
// bank as with the autograd loop.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <map>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/router_bank.h"
#include "omnibind/training/slot_noise.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

torch::nn::Sequential make_router(int64_t in, int64_t h1, int64_t h2, int64_t slots) {
  return torch::nn::Sequential(torch::nn::Linear(in, h1), torch::nn::BatchNorm1d(h1), torch::nn::ReLU(), torch::nn::Linear(h1, h2),
                               torch::nn::BatchNorm1d(h2), torch::nn::Tanh(), torch::nn::Linear(h2, slots));
}

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

at::Tensor info_nce(const at::Tensor& a, const at::Tensor& b, double t) {
  at::Tensor logits = at::mm(a, b.t()) / t;
  at::Tensor target = at::arange(a.size(0), at::kLong);
  return (torch::nn::functional::cross_entropy(logits, target) + torch::nn::functional::cross_entropy(logits.t(), target)) / 2;
}

NamedTensors module_state(torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : m.named_buffers()) out.emplace_back(b.key(), b.value().detach().clone());
  return out;
}
std::map<std::string, at::Tensor> as_map(const NamedTensors& v) { return {v.begin(), v.end()}; }

// A small problem: 4 modalities (text last, as in binding order audio, image, point, text), random router
// inputs, random unit slot embeddings, text source families with unknowns.
struct Problem {
  int64_t T = 40, D = 10, h1 = 16, h2 = 8;
  std::vector<RouterSpec> specs;
  std::vector<at::Tensor> x, slots;
  at::Tensor family, family_mask;
  explicit Problem(uint64_t seed) {
    at::manual_seed(static_cast<int64_t>(seed));
    const std::vector<std::tuple<std::string, int64_t, int64_t>> mods = {{"audio", 7, 3}, {"image", 9, 2}, {"point", 5, 2}, {"text", 12, 4}};
    for (const auto& [m, in, S] : mods) {
      RouterSpec s;
      s.modality = m;
      s.in = in;
      s.hidden1 = h1;
      s.hidden2 = h2;
      s.slots = S;
      s.score_scale = m == "text" ? 10.0 : 1.0;
      specs.push_back(s);
      x.push_back(unit(at::randn({T, in})));
      slots.push_back(unit(at::randn({T, S, D})));
    }
    family_mask = at::tensor({1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 0.f}).reshape({4, 3});  // 4 text slots x 3 families
    family = at::randint(-1, 3, {T}, at::kLong);
  }
};

// The autograd loop's loss (binding_trainer.cpp) on tuples `rows`, routers in training mode.
at::Tensor reference_loss(std::vector<torch::nn::Sequential>& routers, const Problem& p, const at::Tensor& rows, double margin,
                          at::ScalarType dtype, int64_t* dec_active = nullptr, double align_weight = 1.0, double noise_weight = 0.0,
                          bool align_unidentified_only = false) {
  std::vector<at::Tensor> unified, noise_terms;
  at::Tensor text_w;
  for (size_t k = 0; k < routers.size(); ++k) {
    at::Tensor s = at::sigmoid(routers[k]->forward(p.x[k].index_select(0, rows).to(dtype)));
    if (p.specs[k].modality == "text") s = s * 10.0;
    at::Tensor w = at::softmax(s, -1);
    if (p.specs[k].modality == "text") text_w = w;
    unified.push_back(unit((p.slots[k].index_select(0, rows).to(dtype) * w.unsqueeze(2)).sum(1)));
    if (align_unidentified_only && p.specs[k].slots >= 3) unified.back() = unified.back().detach();
    // L_noise (slot_noise.h): mixture variance relative to uniform routing's, routers with >= 3 slots
    const at::Tensor n = slot_noise_variance(p.slots[k]);
    if (noise_weight > 0 && n.defined()) {
      const at::Tensor nb = n.index_select(0, rows).to(dtype);
      const double S = static_cast<double>(nb.size(1));
      noise_terms.push_back(mixture_noise(w, nb).mean() / mixture_noise(at::full_like(nb, 1.0 / S), nb).mean());
    }
  }
  at::Tensor loss = at::zeros({}, dtype);
  int64_t pairs = 0;
  for (size_t i = 0; i < unified.size(); ++i)
    for (size_t j = i + 1; j < unified.size(); ++j, ++pairs) loss = loss + info_nce(unified[i], unified[j], 0.05);
  loss = loss * (align_weight / static_cast<double>(pairs));
  for (const auto& t : noise_terms) loss = loss + noise_weight * t / static_cast<double>(noise_terms.size());
  // L_dec as decoupling_loss: known = family >= 0 (the trainer's rule folded into `family`)
  at::Tensor src = p.family.index_select(0, rows);
  at::Tensor known = src.ge(0);
  if (known.any().item<bool>()) {
    at::Tensor mass = at::mm(text_w, p.family_mask.to(dtype)).clamp_min(1e-8);
    at::Tensor prob = mass / mass.sum(1, true);
    at::Tensor sel = known.nonzero().squeeze(1);
    at::Tensor nll = -prob.index_select(0, sel).log().gather(1, src.index_select(0, sel).unsqueeze(1));
    if (margin < 1.0) nll = at::relu(nll + std::log(margin));
    if (dec_active) *dec_active = nll.gt(0).sum().item<int64_t>();
    loss = loss + nll.mean();
  }
  return loss;
}

std::vector<torch::nn::Sequential> make_routers(const Problem& p, uint64_t seed) {
  std::vector<torch::nn::Sequential> out;
  at::manual_seed(static_cast<int64_t>(seed));
  for (const auto& s : p.specs) {
    out.push_back(make_router(s.in, s.hidden1, s.hidden2, s.slots));
    out.back()->train();
  }
  return out;
}

// The float64 autograd reference: the same parameters in double.
std::vector<torch::nn::Sequential> float64_copies(std::vector<torch::nn::Sequential>& routers) {
  std::vector<torch::nn::Sequential> ref;
  for (auto& r : routers) {
    auto c = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(r->clone());
    c->to(at::kDouble);
    ref.emplace_back(c);
  }
  return ref;
}

RouterBank bank_like(std::vector<torch::nn::Sequential>& routers, const Problem& p, double margin, double align_weight = 1.0,
                     double noise_weight = 0.0, bool align_unidentified_only = false) {
  RouterBankOptions o;
  o.align_unidentified_only = align_unidentified_only;
  o.decoupling_margin = margin;
  o.align_weight = align_weight;
  o.noise_weight = noise_weight;
  RouterBank bank(p.specs, p.D, o);
  for (size_t k = 0; k < routers.size(); ++k) bank.set_router(static_cast<int64_t>(k), module_state(*routers[k]));
  bank.set_data(p.x, p.slots, p.family, p.family_mask);
  return bank;
}

// The pre-BN biases ("0.bias", "3.bias") have an analytically zero gradient (training-mode BN subtracts the batch
// mean): both sides hand back rounding noise there, compared against the router's gradient scale instead.
bool pre_bn_bias(const std::string& n) { return n == "0.bias" || n == "3.bias"; }

TEST(RouterBank, LossAndEveryGradientMatchAutograd) {
  const Problem p(3);
  for (double margin : {0.5, 1.0}) {  // clipped L_dec (the default) and plain cross-entropy
    auto routers = make_routers(p, 11);
    RouterBank bank = bank_like(routers, p, margin);
    std::vector<torch::nn::Sequential> ref = float64_copies(routers);
    const at::Tensor rows = at::randperm(p.T, at::kLong).narrow(0, 0, 32);
    const double loss = bank.loss_and_gradients(rows);
    int64_t dec_active = 0;
    at::Tensor l = reference_loss(ref, p, rows, margin, at::kDouble, &dec_active);
    l.backward();
    EXPECT_NEAR(loss, l.item<double>(), 1e-5 * std::abs(l.item<double>())) << "margin " << margin;
    // The case is meant to exercise L_dec: rows with a family, and (clipped) some past the margin, some not.
    const at::Tensor fam = p.family.index_select(0, rows);
    EXPECT_GT(fam.ge(0).sum().item<int64_t>(), 4);
    EXPECT_GT(fam.lt(0).sum().item<int64_t>(), 0);
    EXPECT_GT(dec_active, 0);
    if (margin < 1.0) EXPECT_LT(dec_active, fam.ge(0).sum().item<int64_t>()) << "some texts past the margin";
    double worst = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
      const auto grads = as_map(bank.gradients(static_cast<int64_t>(k)));
      double scale = 0;
      for (const auto& q : ref[k]->named_parameters()) scale = std::max(scale, q.value().grad().abs().max().item<double>());
      ASSERT_GT(scale, 0);
      for (const auto& q : ref[k]->named_parameters()) {
        const at::Tensor g = q.value().grad();
        const at::Tensor b = grads.at(q.key()).to(at::kDouble);
        const double diff = (b - g).abs().max().item<double>();
        const double mag = pre_bn_bias(q.key()) ? scale : g.abs().max().item<double>();
        EXPECT_LE(diff, 1e-5 * mag) << p.specs[k].modality << " " << q.key() << " margin " << margin << " |g| " << mag;
        worst = std::max(worst, diff / mag);
      }
      // BN running statistics moved the same way
      const auto state = as_map(bank.router_state(static_cast<int64_t>(k)));
      for (const auto& b : ref[k]->named_buffers())
        if (b.value().is_floating_point())
          EXPECT_TRUE(at::allclose(state.at(b.key()).to(at::kDouble), b.value(), 1e-5, 1e-6)) << p.specs[k].modality << " " << b.key();
        else
          EXPECT_EQ(state.at(b.key()).item<int64_t>(), b.value().item<int64_t>()) << b.key();
    }
    std::printf("margin %.1f: loss %.6f vs %.6f, worst gradient difference / its tensor's largest |g|: %.3g\n", margin, loss,
                l.item<double>(), worst);
  }
}

// L_noise (slot_noise.h) on the routers with >= 3 slots (audio 3, text 4 here), with L_align weighted, and with
// L_align kept off the routers L_noise identifies (the "denoise" objective): the same loss and gradients as autograd
// through the reference's mixture variance.
TEST(RouterBank, NoiseLossAndGradientsMatchAutograd) {
  const Problem p(6);
  for (auto [align, noise, unidentified_only] : {std::tuple<double, double, bool>{0.5, 1.0, false}, {0.0, 2.0, false}, {1.0, 1.0, true}}) {
    auto routers = make_routers(p, 13);
    RouterBank bank = bank_like(routers, p, 0.5, align, noise, unidentified_only);
    std::vector<torch::nn::Sequential> ref = float64_copies(routers);
    const at::Tensor rows = at::randperm(p.T, at::kLong).narrow(0, 0, 32);
    const double loss = bank.loss_and_gradients(rows);
    at::Tensor l = reference_loss(ref, p, rows, 0.5, at::kDouble, nullptr, align, noise, unidentified_only);
    l.backward();
    EXPECT_NEAR(loss, l.item<double>(), 1e-5 * std::abs(l.item<double>())) << "align " << align << " noise " << noise;
    for (size_t k = 0; k < ref.size(); ++k) {
      const auto grads = as_map(bank.gradients(static_cast<int64_t>(k)));
      double scale = 0;
      for (const auto& q : ref[k]->named_parameters()) scale = std::max(scale, q.value().grad().abs().max().item<double>());
      if (align == 0 && p.specs[k].slots < 3 && p.specs[k].modality != "text") {  // nothing trains it
        EXPECT_EQ(scale, 0) << p.specs[k].modality;
        continue;
      }
      ASSERT_GT(scale, 0) << p.specs[k].modality;
      for (const auto& q : ref[k]->named_parameters()) {
        const at::Tensor g = q.value().grad();
        const double diff = (grads.at(q.key()).to(at::kDouble) - g).abs().max().item<double>();
        const double mag = pre_bn_bias(q.key()) ? scale : g.abs().max().item<double>();
        EXPECT_LE(diff, 1e-5 * mag) << p.specs[k].modality << " " << q.key() << " align " << align << " noise " << noise;
      }
    }
  }
}

// What L_noise teaches (the default "denoise" objective): three slots aim at the same point, slot 0 is precise for
// inputs of class 0 and slot 2 for class 1 (the router input says the class, nothing says which slot is right).
// Trained on L_noise alone, the router moves weight to the precise slot of each class.
TEST(RouterBank, NoiseLossRoutesEachInputTowardTheSlotsThatAgree) {
  at::manual_seed(31);
  const int64_t T = 1024, D = 16, S = 3, in = 4;
  const at::Tensor cls = at::arange(T, at::kLong).remainder(2);
  at::Tensor x = at::randn({T, in}) * 0.1;
  x.select(1, 0).add_(cls.to(at::kFloat) * 2 - 1);
  const at::Tensor t = at::randn({T, 1, D});
  const at::Tensor good = at::full({T}, 0.1f), bad = at::full({T}, 1.0f);
  const at::Tensor sigma = at::stack({at::where(cls.eq(0), good, bad), bad, at::where(cls.eq(1), good, bad)}, 1);  // [T, S]
  const at::Tensor slots = (t + at::randn({T, S, D}) * sigma.unsqueeze(2) / std::sqrt(static_cast<double>(D))).contiguous();
  RouterSpec spec;
  spec.modality = "audio", spec.in = in, spec.hidden1 = 16, spec.hidden2 = 8, spec.slots = S;
  RouterBankOptions o;
  o.lr = 1e-2;
  o.noise_weight = 1.0;
  o.align_weight = 0.0;
  at::manual_seed(5);
  auto router = make_router(in, 16, 8, S);
  RouterBank bank({spec}, D, o);
  bank.set_router(0, module_state(*router));
  bank.set_data({x.contiguous()}, {slots});
  for (int epoch = 0; epoch < 20; ++epoch) bank.train_epoch(at::randperm(T, at::kLong), 64);
  const auto state = bank.router_state(0);
  for (auto& q : router->named_parameters()) q.value().data().copy_(as_map(state).at(q.key()));
  for (auto& b : router->named_buffers()) b.value().copy_(as_map(state).at(b.key()));
  router->eval();
  at::NoGradGuard no_grad;
  const at::Tensor w = at::softmax(at::sigmoid(router->forward(x)), -1);  // [T, S]
  const at::Tensor w0 = w.index_select(0, cls.eq(0).nonzero().squeeze(1)).mean(0);
  const at::Tensor w1 = w.index_select(0, cls.eq(1).nonzero().squeeze(1)).mean(0);
  std::printf("class 0 weights %.3f %.3f %.3f; class 1 weights %.3f %.3f %.3f\n", w0[0].item<double>(), w0[1].item<double>(),
              w0[2].item<double>(), w1[0].item<double>(), w1[1].item<double>(), w1[2].item<double>());
  EXPECT_GT(w0[0].item<double>(), w0[2].item<double>() + 0.15) << "class 0 trusts slot 0";
  EXPECT_GT(w1[2].item<double>(), w1[0].item<double>() + 0.15) << "class 1 trusts slot 2";
}

TEST(RouterBank, AdamWStepsMatchTorchAndAnyThreadCount) {
  const Problem p(5);
  auto routers = make_routers(p, 21);
  RouterBank bank = bank_like(routers, p, 0.5);
  RouterBank bank2 = bank_like(routers, p, 0.5);
  std::vector<at::Tensor> params;
  for (auto& r : routers)
    for (auto& q : r->parameters()) params.push_back(q);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3).weight_decay(1e-4));
  const int steps = 8;
  std::vector<at::Tensor> orders;
  for (int s = 0; s < steps; ++s) orders.push_back(at::randperm(p.T, at::kLong).narrow(0, 0, 24));
  for (int s = 0; s < steps; ++s) {
    const double lb = bank.step(orders[s]);
    at::Tensor l = reference_loss(routers, p, orders[s], 0.5, at::kFloat);
    opt.zero_grad();
    l.backward();
    opt.step();
    EXPECT_NEAR(lb, l.item<double>(), 1e-5 * std::abs(l.item<double>())) << "step " << s;
  }
  // After the steps: every parameter and buffer but the noise-driven ones (pre-BN biases, and the running means
  // that carry them) within float tolerance; the AdamW moments and step counts as torch's.
  for (size_t k = 0; k < routers.size(); ++k) {
    const auto state = as_map(bank.router_state(static_cast<int64_t>(k)));
    for (const auto& [n, t] : module_state(*routers[k])) {
      if (pre_bn_bias(n) || n.find("running_mean") != std::string::npos) continue;
      if (t.is_floating_point())
        EXPECT_LE((state.at(n) - t).abs().max().item<double>(), 2e-5) << p.specs[k].modality << " " << n;
      else
        EXPECT_EQ(state.at(n).item<int64_t>(), t.item<int64_t>()) << n;
    }
    for (int i = 0; i < RouterBank::kParams; ++i) {
      const auto a = bank.adam_state(static_cast<int64_t>(k), i);
      const at::Tensor& q = params[k * RouterBank::kParams + static_cast<size_t>(i)];
      auto& st = static_cast<torch::optim::AdamWParamState&>(*opt.state().at(c10::guts::to_string(q.unsafeGetTensorImpl())));
      EXPECT_EQ(a.step, st.step());
      if (pre_bn_bias(RouterBank::param_name(i))) continue;
      EXPECT_LE((a.exp_avg - st.exp_avg()).abs().max().item<double>(), 1e-5 * st.exp_avg().abs().max().item<double>() + 1e-9)
          << RouterBank::param_name(i);
    }
  }
  // The same steps on 1 thread and on 3: identical bytes (every task writes its own buffers).
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  for (int s = 0; s < steps; ++s) bank2.step(orders[s]);
  RouterBank bank3 = bank_like(routers, p, 0.5);  // from the trained state: one more step each way
  at::set_num_threads(3);
  RouterBank bank4 = bank_like(routers, p, 0.5);
  for (int s = 0; s < 2; ++s) bank4.step(orders[s]);
  at::set_num_threads(1);
  for (int s = 0; s < 2; ++s) bank3.step(orders[s]);
  at::set_num_threads(threads);
  for (int64_t k = 0; k < bank.routers(); ++k) {
    const auto a = bank.router_state(k), b = bank2.router_state(k), c = bank3.router_state(k), d = bank4.router_state(k);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
      EXPECT_TRUE(at::equal(c[i].second, d[i].second)) << c[i].first;
    }
  }
}

TEST(RouterBank, AdamStateRoundTripsSoAStepCanResume) {
  const Problem p(7);
  auto routers = make_routers(p, 31);
  RouterBank a = bank_like(routers, p, 0.5);
  const at::Tensor order = at::randperm(p.T, at::kLong);
  a.train_epoch(order, 16);  // 40 rows: batches of 16, 16, 8
  RouterBank b(p.specs, p.D, [] {
    RouterBankOptions o;
    o.decoupling_margin = 0.5;
    return o;
  }());
  for (int64_t k = 0; k < a.routers(); ++k) {
    b.set_router(k, a.router_state(k));
    for (int i = 0; i < RouterBank::kParams; ++i) b.set_adam_state(k, i, a.adam_state(k, i));
  }
  b.set_data(p.x, p.slots, p.family, p.family_mask);
  a.train_epoch(order, 16);
  b.train_epoch(order, 16);
  for (int64_t k = 0; k < a.routers(); ++k) {
    const auto x = a.router_state(k), y = b.router_state(k);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(at::equal(x[i].second, y[i].second)) << x[i].first;
    EXPECT_EQ(a.adam_state(k, 0).step, 6);
  }
}

// Routing weights [B, S] of a trained state's router for modality m on inputs x (eval mode, as inference).
at::Tensor routing(const NamedTensors& state, const binding::BindingConfig& config, const std::string& m,
                   const std::map<std::string, at::Tensor>& in) {
  std::vector<at::Tensor> parts;
  for (const auto& n : config.router_inputs.at(m)) parts.push_back(in.at(n));
  const std::string prefix = binding::router_prefix(m);
  std::map<std::string, at::Tensor> t;
  for (const auto& [n, v] : state)
    if (n.rfind(prefix, 0) == 0) t[n.substr(prefix.size())] = v;
  auto r = make_router(t.at("0.weight").size(1), t.at("0.weight").size(0), t.at("3.weight").size(0), t.at("6.weight").size(0));
  for (auto& q : r->named_parameters()) q.value().detach().copy_(t.at(q.key()));
  for (auto& q : r->named_buffers()) q.value().copy_(t.at(q.key()));
  r->eval();
  at::NoGradGuard no_grad;
  at::Tensor s = at::sigmoid(r->forward(at::cat(parts, 1)));
  if (m == "text") s = s * config.text_temperature;
  return at::softmax(s, -1);
}

TEST(RouterBank, TrainBindingGivesTheAutogradLoopsRouters) {
  const fs::path dir = testkit::make_temp_dir("router_bank_train");
  toy::World world(8);
  world.write_pool(dir / "pool", 200);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o;
  set_router_objective(o, "paper");  // L_align + L_dec: the math both paths must agree on (toy slots are too few for L_noise)
  o.seed = 4;
  o.threads = 1;
  o.projector_epochs = 2;
  o.router_epochs = 4;
  o.batch = 64;
  o.router_validation = 0;  // the last epoch's routers as trained (validation picks among them: compared below)
  TrainOptions plain = o;
  plain.router_bank = false;
  const NamedTensors a = train_binding(pool, tuples, config, o);
  const NamedTensors b = train_binding(pool, tuples, config, plain);
  ASSERT_EQ(a.size(), b.size());
  // Projector heads: identical (the router stage does not touch them).
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first.rfind("projs.", 0) == 0) EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  // Routers: 4 epochs x 12 AdamW steps from the same start on the same batches. Every tensor but the noise-driven
  // ones (pre-BN biases, the running means that carry them) stays within 1e-4: float rounding (~1e-7 per step)
  // through 48 AdamW steps of lr 1e-3 where a near-zero second moment can turn it into steps of up to ~lr.
  double worst = 0, worst_any = 0;
  std::string worst_name;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string& n = a[i].first;
    if (n.find("_router.") == std::string::npos || !a[i].second.is_floating_point()) continue;
    worst_any = std::max(worst_any, (a[i].second - b[i].second).abs().max().item<double>());
    if (n.find("running_mean") != std::string::npos || n.ends_with(".0.bias") || n.ends_with(".3.bias")) continue;
    const double d = (a[i].second - b[i].second).abs().max().item<double>();
    if (d > worst) worst = d, worst_name = n;
  }
  std::printf("max |bank - autograd| over router tensors: %.3g (%s); with the noise-driven ones %.3g\n", worst, worst_name.c_str(),
              worst_any);
  EXPECT_GT(worst_any, 0) << "two different implementations ran";
  EXPECT_LE(worst, 1e-4) << worst_name;
  // What users get: eval-mode routing weights on fresh items (the noise-driven tensors included) agree.
  at::manual_seed(77);
  const at::Tensor labels = at::arange(64, at::kLong).remainder(8);
  double worst_w = 0;
  for (const std::string m : {"audio", "image", "point", "text"}) {
    const auto in = world.embed(m, labels);
    const double d = (routing(a, config, m, in) - routing(b, config, m, in)).abs().max().item<double>();
    worst_w = std::max(worst_w, d);
  }
  std::printf("max |routing weight difference| on fresh items: %.3g\n", worst_w);
  EXPECT_LE(worst_w, 1e-3);
}

TEST(RouterBank, TrainBindingWithValidationAndResumeThroughTheStateFile) {
  const fs::path dir = testkit::make_temp_dir("router_bank_resume");
  toy::World world(9);
  world.write_pool(dir / "pool", 200);  // 800 tuples: 80 held out for router validation
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o;
  set_router_objective(o, "paper");  // toy slots are too few for L_noise: the paper objective trains (and validates) them
  o.seed = 12;
  o.threads = 2;
  o.projector_epochs = 1;
  o.router_epochs = 3;
  o.batch = 64;
  RouterValidationReport full_report;
  o.router_report = &full_report;
  const NamedTensors a = train_binding(pool, tuples, config, o);
  ASSERT_GT(full_report.held_out, 0);
  EXPECT_EQ(full_report.epoch_scores.size(), 3u);
  // Interrupted after router epoch 1, resumed with the autograd loop, and the other way round: the state file
  // carries routers and AdamW moments between the two.
  for (bool first_bank : {true, false}) {
    TrainOptions r = o;
    RouterValidationReport rep;
    r.router_report = &rep;
    r.state_file = dir / ("state" + std::to_string(first_bank) + ".safetensors");
    r.router_bank = first_bank;
    r.progress = [](const TrainProgress& p) {
      if (p.stage.rfind("router epoch 2", 0) == 0) throw std::runtime_error("interrupted");
    };
    EXPECT_THROW(train_binding(pool, tuples, config, r), std::runtime_error);
    r.progress = {};
    r.resume = true;
    r.router_bank = !first_bank;
    const NamedTensors c = train_binding(pool, tuples, config, r);
    ASSERT_EQ(a.size(), c.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string& n = a[i].first;
      if (!a[i].second.is_floating_point() || n.find("running_mean") != std::string::npos || n.ends_with(".0.bias") ||
          n.ends_with(".3.bias"))
        continue;
      worst = std::max(worst, (a[i].second - c[i].second).abs().max().item<double>());
    }
    EXPECT_LE(worst, 1e-4) << "first part with the bank: " << first_bank;
    EXPECT_EQ(rep.epoch_scores.size(), 2u);  // this session's epochs
  }
}

}  // namespace
}  // namespace omnibind::training
