// K projector heads of one space trained together as one bank (issue 16 item 5): the same math as K
// separate torch::nn heads with torch::optim::AdamW (binding_trainer.cpp's per-head loop), executed
// without autograd, without allocations in the hot path and without a thread barrier per layer.
//
//   head_k(x) = L2normalize(BN(Linear(ReLU(BN(Linear(x))))))     x [B, d] -> [B, D], BN in training mode
//   loss_k    = symmetric InfoNCE(head_k(x_k), y_k) / temperature      (as training's info_nce)
//   AdamW     = torch::optim::AdamW (decoupled decay p *= 1 - lr*wd, bias-corrected moments)
//
// Every head reads its own rows (its own permutation per epoch, like the per-head loop), so a layer of
// the bank is a batched GEMM [K, B, d] x [K, d, H]; on the CPU it runs as one single-threaded BLAS GEMM
// per head with the heads spread over the compute threads (OpenBLAS held at 1 thread meanwhile): one
// parallel region per epoch, every head's whole step (forward, backward, AdamW) inside its task, the
// per-thread workspaces allocated once. Heads are independent, so the result does not depend on how
// they are spread. The gradient of the pre-BN biases is kept (rounding noise, as in autograd): their
// running means carry them, and AdamW moves them like the per-head loop does.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace omnibind::training {

struct HeadBankOptions {
  double lr = 1e-3, weight_decay = 1e-4;   // AdamW
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double temperature = 0.05;               // InfoNCE
  double bn_momentum = 0.1, bn_eps = 1e-5; // torch.nn.BatchNorm1d defaults
};

class HeadBank {
 public:
  HeadBank(int64_t heads, int64_t in_dim, int64_t hidden, int64_t out_dim, HeadBankOptions options = {});

  int64_t heads() const { return heads_; }
  // Head k's parameters and BN buffers from tensors named as torch::nn::Sequential(Linear, BatchNorm1d, ReLU,
  // Linear, BatchNorm1d) names them ("0.weight", "1.running_mean", ...); AdamW state reset.
  void set_head(int64_t k, const std::vector<std::pair<std::string, at::Tensor>>& named);
  // Head k as the same names (float32 copies; "*.num_batches_tracked" int64 scalars), prefixed.
  std::vector<std::pair<std::string, at::Tensor>> head_state(int64_t k, const std::string& prefix = "") const;

  // One epoch: head k walks orders[k] (int64 [N], row ids into x/y) in batches of `batch` (the last one
  // shorter; a remainder of one row is dropped, as `for (b = 0; b + 1 < N; b += batch)` does). x [rows, d]
  // and y [rows, D] float32 contiguous, shared by every head. Returns each head's mean loss.
  std::vector<double> train_epoch(const at::Tensor& x, const at::Tensor& y, const std::vector<at::Tensor>& orders,
                                  int64_t batch);
  // One step with explicit batches x [K, B, d], y [K, B, D]; returns each head's loss (tests).
  std::vector<double> step(const at::Tensor& x, const at::Tensor& y);

  // GEMM FLOPs of one head's step on `rows` rows (forward, logits, backward without the input gradient).
  double step_flops(int64_t rows) const;

  struct Head;       // parameters, gradients, moments, BN buffers (flat float arrays)
  struct Workspace;  // one thread's activations
  ~HeadBank();
  HeadBank(HeadBank&&) noexcept;
  HeadBank& operator=(HeadBank&&) noexcept;

 private:
  double step_head(Head& h, Workspace& ws, const float* x, const float* y, int64_t rows);
  Workspace& workspace(int thread, int64_t rows);

  int64_t heads_, d_, H_, D_;
  HeadBankOptions o_;
  std::vector<Head> bank_;
  std::vector<Workspace> workspaces_;
};

}  // namespace omnibind::training
