// The projector-head bank (training/head_bank.h) against K separate torch::nn heads trained with autograd and
// torch::optim::AdamW, as binding_trainer's per-head loop does: same losses, same parameters and BatchNorm
// buffers after several steps (float tolerance), independent of the thread count; and train_binding gives
// the same heads and model with the bank as without it.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <cstring>
#include <map>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/head_bank.h"
#include "omnibind/training/tuple_mining.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

torch::nn::Sequential make_head(int64_t in, int64_t hidden, int64_t out) {
  return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::BatchNorm1d(hidden), torch::nn::ReLU(),
                               torch::nn::Linear(hidden, out), torch::nn::BatchNorm1d(out));
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

struct Reference {  // K torch heads + their AdamW, as the per-head training loop runs them
  std::vector<torch::nn::Sequential> heads;
  std::vector<std::unique_ptr<torch::optim::AdamW>> opts;
  Reference(int64_t K, int64_t d, int64_t H, int64_t D, uint64_t seed) {
    for (int64_t k = 0; k < K; ++k) {
      at::manual_seed(seed + static_cast<uint64_t>(k));
      heads.push_back(make_head(d, H, D));
      heads.back()->train();
      opts.push_back(std::make_unique<torch::optim::AdamW>(heads.back()->parameters(),
                                                           torch::optim::AdamWOptions(1e-3).weight_decay(1e-4)));
    }
  }
  double step(int64_t k, const at::Tensor& x, const at::Tensor& y) {
    at::Tensor loss = info_nce(unit(heads[k]->forward(x)), y, 0.05);
    opts[k]->zero_grad();
    loss.backward();
    opts[k]->step();
    return loss.item<double>();
  }
};

HeadBank bank_like(Reference& ref, int64_t d, int64_t H, int64_t D) {
  HeadBank bank(static_cast<int64_t>(ref.heads.size()), d, H, D);
  for (size_t k = 0; k < ref.heads.size(); ++k) bank.set_head(static_cast<int64_t>(k), module_state(*ref.heads[k]));
  return bank;
}

// The pre-BN biases' true gradient is 0 (training-mode BN subtracts the batch mean), so autograd hands AdamW
// rounding noise, which it normalises into steps of up to ~lr of random sign: those biases random-walk, and
// the BN running means follow them, differently in any two implementations (or BLAS builds). They do not change
// the training-mode output (so no other tensor feels them); in eval mode only their lag matters.
bool noise_driven(const std::string& name) {
  for (const char* tail : {"0.bias", "3.bias", "1.running_mean", "4.running_mean"})
    if (name.size() >= std::strlen(tail) && name.compare(name.size() - std::strlen(tail), std::string::npos, tail) == 0) return true;
  return false;
}

// Every parameter and buffer of head k: the bank's against the reference module's, the noise-driven ones
// through the eval-mode output with the reference's values in their place.
void expect_same_head(HeadBank& bank, Reference& ref, int64_t k, double tol, const at::Tensor& probe) {
  auto got = as_map(bank.head_state(k));
  auto want = as_map(module_state(*ref.heads[k]));
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const at::Tensor g = got.at(name);
    ASSERT_EQ(g.sizes(), w.sizes()) << name;
    if (w.scalar_type() == at::kLong) {
      EXPECT_TRUE(at::equal(g, w)) << name;
      continue;
    }
    if (noise_driven(name)) {
      got[name] = w;
      continue;
    }
    EXPECT_LE((g - w).abs().max().item<double>(), tol) << "head " << k << " " << name;
  }
  // Eval-mode outputs (BN with running statistics): what inference runs.
  torch::nn::Sequential copy = make_head(probe.size(1), want.at("0.weight").size(0), want.at("3.weight").size(0));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : copy->named_parameters()) p.value().copy_(got.at(p.key()));
    for (auto& b : copy->named_buffers()) b.value().copy_(got.at(b.key()));
  }
  copy->eval();
  ref.heads[k]->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor a = unit(copy->forward(probe)), b = unit(ref.heads[k]->forward(probe));
  ref.heads[k]->train();
  EXPECT_LE((a - b).abs().max().item<double>(), 20 * tol) << "head " << k << " eval output";
  EXPECT_GE(at::cosine_similarity(a, b, 1).min().item<double>(), 0.99999) << "head " << k;
}

TEST(HeadBank, StepsMatchSeparateTorchHeads) {
  tensor_io::set_compute_threads(1);
  const int64_t K = 3, d = 12, H = 48, D = 16, B = 40, steps = 12;
  Reference ref(K, d, H, D, 100);
  HeadBank bank = bank_like(ref, d, H, D);
  at::manual_seed(7);
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor x = unit(at::randn({K, B, d})), y = unit(at::randn({K, B, D}));
    const std::vector<double> losses = bank.step(x, y);
    for (int64_t k = 0; k < K; ++k) {
      const double want = ref.step(k, x[k], y[k]);
      EXPECT_NEAR(losses[static_cast<size_t>(k)], want, 1e-5 * std::max(1.0, std::abs(want))) << "step " << s << " head " << k;
    }
  }
  const at::Tensor probe = unit(at::randn({64, d}));
  for (int64_t k = 0; k < K; ++k) expect_same_head(bank, ref, k, 2e-5, probe);
}

TEST(HeadBank, EpochFollowsEachHeadsOrderAndDoesNotDependOnThreads) {
  const int64_t K = 4, d = 10, H = 24, D = 8, N = 83, batch = 16;  // batches 16 x 5 + 3
  at::manual_seed(3);
  const at::Tensor x = unit(at::randn({N, d})), y = unit(at::randn({N, D}));
  std::vector<at::Tensor> orders;
  for (int64_t k = 0; k < K; ++k) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(50 + k);
    orders.push_back(at::randperm(N, gen, at::kLong));
  }
  Reference ref(K, d, H, D, 200);
  HeadBank one = bank_like(ref, d, H, D), two = bank_like(ref, d, H, D);
  tensor_io::set_compute_threads(1);
  const std::vector<double> l1 = one.train_epoch(x, y, orders, batch);
  tensor_io::set_compute_threads(2);
  const std::vector<double> l2 = two.train_epoch(x, y, orders, batch);
  tensor_io::set_compute_threads(1);
  for (int64_t k = 0; k < K; ++k) {
    EXPECT_EQ(l1[static_cast<size_t>(k)], l2[static_cast<size_t>(k)]) << k;
    auto a = one.head_state(k), b = two.head_state(k);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
    // The reference walks the same order in the same batches.
    double sum = 0;
    int64_t batches = 0;
    for (int64_t b0 = 0; b0 + 1 < N; b0 += batch, ++batches) {
      const at::Tensor ids = orders[static_cast<size_t>(k)].narrow(0, b0, std::min(batch, N - b0));
      sum += ref.step(k, x.index_select(0, ids), y.index_select(0, ids));
    }
    EXPECT_NEAR(l1[static_cast<size_t>(k)], sum / static_cast<double>(batches), 1e-5) << k;
    expect_same_head(one, ref, k, 2e-5, x);
  }
}

TEST(BindingTrainer, HeadBankGivesTheSameModelAsPerHeadTraining) {
  const fs::path dir = testkit::make_temp_dir("head_bank");
  toy::World world(9);
  world.write_pool(dir / "pool", 150);
  EmbeddingPool pool = EmbeddingPool::open(dir / "pool");
  TupleSet tuples = mine_tuples(pool, MiningOptions{});
  auto config = binding::parse_binding_config(toy::kConfigJson, "toy");
  TrainOptions o;
  o.seed = 4;
  o.threads = 2;
  o.projector_epochs = 3;
  o.router_epochs = 2;
  o.batch = 48;
  NamedTensors bank = train_binding(pool, tuples, config, o);
  o.head_bank = false;
  NamedTensors plain = train_binding(pool, tuples, config, o);
  ASSERT_EQ(bank.size(), plain.size());
  auto want = as_map(plain);
  NamedTensors bank_fixed;  // the bank's heads with the per-head run's noise-driven tensors (see noise_driven)
  int64_t compared = 0;
  for (const auto& [name, t] : bank) {
    ASSERT_TRUE(want.count(name)) << name;
    const at::Tensor& w = want.at(name);
    ASSERT_EQ(t.sizes(), w.sizes()) << name;
    const bool head = name.rfind("projs.", 0) == 0 || name.rfind("ib_projs.", 0) == 0;
    bank_fixed.emplace_back(name, head && noise_driven(name) ? w : t);
    if (t.scalar_type() == at::kLong) EXPECT_TRUE(at::equal(t, w)) << name;
    else if (head && !noise_driven(name)) {
      EXPECT_LE((t - w).abs().max().item<double>(), 1e-4 * std::max(1.0, w.abs().max().item<double>())) << name;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 2 * 2 * 8);  // AT and PI (IT is the backbone) x 2 heads x W1, g1, be1, rv1, W2, g2, be2, rv2
  // The projectors: every slot embedding of every modality's pool rows (heads only; the routers were trained
  // on the two runs' frozen heads, which differ by the noise-driven tensors).
  const binding::OmniBindModel a = load_trained_model(bank_fixed, config), b = load_trained_model(plain, config);
  for (const std::string m : {"audio", "image", "point", "text"}) {
    std::map<std::string, at::Tensor> in;
    for (const auto& n : a.required_inputs(m)) in[n] = pool.embeddings(m, n, 0, pool.rows(m));
    const at::Tensor ea = a.slot_embeddings(m, in), eb = b.slot_embeddings(m, in);
    EXPECT_GE(at::cosine_similarity(ea, eb, 2).min().item<double>(), 0.99999) << m;
    EXPECT_LE((ea - eb).abs().max().item<double>(), 1e-4) << m;
  }
  // With their own noise-driven tensors, the two models still agree closely (what users see).
  const binding::OmniBindModel c = load_trained_model(bank, config);
  for (const std::string m : {"audio", "image", "point", "text"}) {
    std::map<std::string, at::Tensor> in;
    for (const auto& n : c.required_inputs(m)) in[n] = pool.embeddings(m, n, 0, pool.rows(m));
    EXPECT_GE(at::cosine_similarity(c.embed(m, in), b.embed(m, in), 1).min().item<double>(), 0.999) << m;
  }
  tensor_io::set_compute_threads(1);
}

}  // namespace
}  // namespace omnibind::training
