// Projector-head and router training throughput at official widths, against this machine's GEMM rate
// measured in the same run (the roofline). One training step is what training/binding_trainer.cpp runs per
// batch: Linear(d,H)-BN-ReLU-Linear(H,D)-BN, L2, symmetric InfoNCE against unit targets, backward, AdamW.
// The roofline times the same GEMMs alone (forward x W1^T, h W2^T, logits; backward dW2, dh, dW1, dlogits).
//   bench_training [--dim 1024] [--hidden 2048] [--out 1024] [--batch 256] [--steps 30] [--threads 0]
//                  [--router-in 3072] [--slots 4]
// Prints JSON.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "omnibind/common/process_memory.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace {
using clk = std::chrono::steady_clock;

double seconds(const std::function<void()>& f, int reps) {
  f();  // warm-up
  auto t0 = clk::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double>(clk::now() - t0).count();
}

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

at::Tensor info_nce(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor logits = at::mm(a, b.t()) / 0.05;
  at::Tensor t = at::arange(a.size(0), at::kLong);
  return (torch::nn::functional::cross_entropy(logits, t) + torch::nn::functional::cross_entropy(logits.t(), t)) / 2;
}
}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int64_t d = 1024, H = 2048, D = 1024, B = 256, router_in = 3072, slots = 4;
  int steps = 30, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (k == "--dim") d = v;
    else if (k == "--hidden") H = v;
    else if (k == "--out") D = v;
    else if (k == "--batch") B = v;
    else if (k == "--steps") steps = static_cast<int>(v);
    else if (k == "--threads") threads = static_cast<int>(v);
    else if (k == "--router-in") router_in = v;
    else if (k == "--slots") slots = v;
    else { std::fprintf(stderr, "bench_training: unknown option %s\n", k.c_str()); return 2; }
  }
  const int used = omnibind::tensor_io::set_compute_threads(threads);
  at::manual_seed(1);
  at::Tensor x = unit(at::randn({B, d})), y = unit(at::randn({B, D}));

  // Head training step.
  torch::nn::Sequential head(torch::nn::Linear(d, H), torch::nn::BatchNorm1d(H), torch::nn::ReLU(), torch::nn::Linear(H, D),
                             torch::nn::BatchNorm1d(D));
  head->train();
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(1e-4));
  const double head_s = seconds([&] {
    at::Tensor loss = info_nce(unit(head->forward(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }, steps);
  // GEMM FLOPs of one step: forward 2B(dH + HD) + logits 2BBD; backward dW1, dW2 2B(dH + HD), dh 2BHD,
  // d(out) from the logits 2BBD (the input needs no gradient).
  const double flops = 2.0 * B * (d * H + H * D) * 2 + 2.0 * B * H * D + 2.0 * B * B * D * 2;
  // Roofline: the same GEMMs alone.
  at::Tensor W1 = at::randn({H, d}), W2 = at::randn({D, H}), h = at::randn({B, H}), o = at::randn({B, D}), g = at::randn({B, D});
  const double gemm_s = seconds([&] {
    at::Tensor a1 = at::mm(x, W1.t());
    at::Tensor a2 = at::mm(h, W2.t());
    at::Tensor lg = at::mm(o, y.t());
    at::Tensor gw2 = at::mm(g.t(), h);
    at::Tensor gh = at::mm(g, W2);
    at::Tensor gw1 = at::mm(gh.t(), x);
    at::Tensor go = at::mm(lg, y);
    (void)a1; (void)a2; (void)gw2; (void)gw1; (void)go;
  }, steps);

  // Router training step (projectors frozen: slot embeddings are inputs), official router widths [512, 100].
  at::Tensor rin = unit(at::randn({B, router_in})), slot_emb = unit(at::randn({B, slots, D})), partner = unit(at::randn({B, D}));
  torch::nn::Sequential router(torch::nn::Linear(router_in, 512), torch::nn::BatchNorm1d(512), torch::nn::ReLU(),
                               torch::nn::Linear(512, 100), torch::nn::BatchNorm1d(100), torch::nn::Tanh(),
                               torch::nn::Linear(100, slots));
  router->train();
  torch::optim::AdamW ropt(router->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(1e-4));
  const double router_s = seconds([&] {
    at::Tensor w = at::softmax(at::sigmoid(router->forward(rin)) * 10.0, -1);
    at::Tensor u = unit((slot_emb * w.unsqueeze(2)).sum(1));
    at::Tensor loss = info_nce(u, partner);
    ropt.zero_grad();
    loss.backward();
    ropt.step();
  }, steps);

  nlohmann::json j;
  j["shapes"] = {{"dim", d}, {"hidden", H}, {"out", D}, {"batch", B}, {"router_in", router_in}, {"slots", slots}};
  j["threads"] = used;
  j["steps"] = steps;
  j["head_train_samples_per_s"] = steps * B / head_s;
  j["head_train_gflops"] = steps * flops / head_s / 1e9;
  j["gemm_only_gflops"] = steps * flops / gemm_s / 1e9;
  j["head_fraction_of_gemm_rate"] = gemm_s / head_s;
  j["router_train_samples_per_s"] = steps * B / router_s;
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}
