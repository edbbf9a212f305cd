// The routers of binding training's second stage trained together (issue 16 item 5): the same math as the
// torch::nn routers with autograd and torch::optim::AdamW in binding_trainer.cpp's router loop, written out
// by hand (forward, backward, AdamW) over buffers allocated once, so a step costs a few small GEMMs and
// fused loops instead of ~200 ATen ops, an autograd graph and an OpenMP region per op.
//
// Per routed modality m (projector heads frozen, their slot embeddings precomputed):
//   z     = Linear3(Tanh(BN2(Linear2(ReLU(BN1(Linear1(x_m)))))))      x_m [B, in] -> [B, S]   (BN in training mode)
//   w     = softmax(sigmoid(z) * scale_m)                                scale: the text temperature for text, else 1
//   u_m   = L2normalize(sum_s w[:, s] * slots_m[:, s, :])                slots_m [B, S, D] (frozen)
// loss    = mean over modality pairs (i < j) of symmetric InfoNCE(u_i, u_j) / temperature
//   (the InfoNCE mean x align_weight; with align_unidentified_only its gradient skips routers with >= 3 slots)
//         + noise_weight * mean over routers with >= 3 slots of mean_b(sum_s w^2 n) / mean_b(sum_s n / S^2), n [B, S]
//           the slots' estimated error variances (slot_noise.h, precomputed per tuple): L_noise, relative to uniform
//         + decoupling_weight * mean over the texts with a known source family c of
//           relu(-log(p_c) + log(margin))   (no clip when margin >= 1),  p = clamp(w_text F, 1e-8) normalised,
//           F [S, families] the family mask of the text slots.
// AdamW as torch::optim::AdamW (decoupled decay, bias-corrected moments, one step count per parameter).
//
// A step runs in three parallel phases (forward per modality, InfoNCE per pair, backward + AdamW per
// modality), each task writing only its own buffers and the pair gradients summed in a fixed order, so the
// result does not depend on the thread count. OpenBLAS is held at one thread meanwhile.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace omnibind::training {

struct RouterSpec {
  std::string modality;          // "text" gets the decoupling term
  int64_t in = 0;                // router input width (its experts' dims, concatenated)
  int64_t hidden1 = 0, hidden2 = 0;
  int64_t slots = 0;             // S
  double score_scale = 1.0;      // sigmoid scores x this before the softmax (text temperature for text)
};

struct RouterBankOptions {
  double lr = 1e-3, weight_decay = 1e-4;   // AdamW
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double temperature = 0.05;               // InfoNCE
  double bn_momentum = 0.1, bn_eps = 1e-5; // torch.nn.BatchNorm1d defaults
  double decoupling_weight = 1.0;
  double decoupling_margin = 0.5;          // >= 1: plain cross-entropy
  double align_weight = 1.0;               // L_align (the InfoNCE mean)
  double noise_weight = 0.0;               // L_noise (0: not computed)
  bool align_unidentified_only = false;    // L_align's gradient reaches only routers with fewer than 3 slots
};

class RouterBank {
 public:
  // Parameters of one router in torch::nn::Sequential's parameters() order.
  static constexpr int kParams = 10;
  static const char* param_name(int i);  // "0.weight", "0.bias", "1.weight", ..., "6.bias"

  RouterBank(std::vector<RouterSpec> routers, int64_t out_dim, RouterBankOptions options = {});
  ~RouterBank();
  RouterBank(RouterBank&&) noexcept;
  RouterBank& operator=(RouterBank&&) noexcept;

  int64_t routers() const { return static_cast<int64_t>(specs_.size()); }
  const RouterSpec& spec(int64_t r) const { return specs_.at(static_cast<size_t>(r)); }

  // Router r's parameters and BN buffers from tensors named as torch::nn::Sequential(Linear, BatchNorm1d, ReLU,
  // Linear, BatchNorm1d, Tanh, Linear) names them ("0.weight", "1.running_mean", "1.num_batches_tracked", ...).
  void set_router(int64_t r, const std::vector<std::pair<std::string, at::Tensor>>& named);
  // Router r as the same names (float32 copies; "*.num_batches_tracked" int64 scalars), prefixed.
  std::vector<std::pair<std::string, at::Tensor>> router_state(int64_t r, const std::string& prefix = "") const;

  // AdamW state of parameter i of router r (torch::optim::AdamWParamState's step / exp_avg / exp_avg_sq).
  struct AdamState {
    int64_t step = 0;
    at::Tensor exp_avg, exp_avg_sq;  // shaped like the parameter
  };
  void set_adam_state(int64_t r, int i, const AdamState& state);
  AdamState adam_state(int64_t r, int i) const;

  // The training data, one entry per router in bank order: x[r] [T, in] and slots[r] [T, S, D] float32
  // contiguous (held by reference: keep them alive); family [T] int64 = the source family of tuple t's text
  // member (-1: no decoupling term for it), undefined = no decoupling; family_mask [S_text, F] float.
  void set_data(std::vector<at::Tensor> x, std::vector<at::Tensor> slots, at::Tensor family = {}, at::Tensor family_mask = {});

  // One AdamW step on the tuples `rows` (at least 2); returns the loss.
  double step(const at::Tensor& rows);
  // One pass over `order` (int64 tuple rows) in batches of `batch`: `for (b = 0; b + 1 < N; b += batch)`, a batch
  // of one row skipped, as the autograd loop does. Returns the mean loss over the batches.
  double train_epoch(const at::Tensor& order, int64_t batch);

  // Tests: the loss of the tuples `rows` and every parameter's gradient (no update; BN running stats do move,
  // as a training-mode forward does). gradients(r) names them like router_state.
  double loss_and_gradients(const at::Tensor& rows);
  std::vector<std::pair<std::string, at::Tensor>> gradients(int64_t r) const;

  struct Router;     // parameters, gradients, moments, BN buffers, activations
  struct Pair;       // one modality pair's InfoNCE buffers

 private:
  double forward_backward(const int64_t* rows, int64_t B, bool update);
  double run_batch(const at::Tensor& rows, bool update);
  void adamw(Router& r);
  void reserve(int64_t rows);

  std::vector<RouterSpec> specs_;
  int64_t D_;
  RouterBankOptions o_;
  std::vector<Router> bank_;
  std::vector<Pair> pairs_;
  std::vector<at::Tensor> x_, slots_;
  std::vector<at::Tensor> noise_;  // per router: [T, S] slot error variances when L_noise applies, else undefined
  int64_t noise_routers_ = 0;      // how many routers have them
  at::Tensor family_, family_mask_;
  int64_t text_ = -1;  // index of the text router (decoupling), -1 none
  int64_t rows_ = 0;   // buffers sized for this many rows
};

}  // namespace omnibind::training
