// Binding training (issue 3; method and decisions in docs/reference/binding_training.md):
// 1. projector heads per expert space, trained with symmetric InfoNCE to land on the backbone's
//    embeddings of the same pseudo tuple's members (experts frozen: only their pool embeddings);
// 2. routers per modality with the projectors frozen: L_align (contrastive over every modality pair
//    of a tuple, on the routed unified embeddings) + L_dec (texts routed to the experts of the family
//    they describe).
// The result is an official-layout state dict (projs.N.Head2.mlps.*, ib_projs.*, X_enc_router.*).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/distributed/distributed_context.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::binding {
class OmniBindModel;
}

namespace omnibind::training {

struct TrainProgress {
  std::string stage;      // "projector CLAP head 3/7", "router epoch 2/10"
  double fraction = 0;    // of the whole run
  double loss = 0;        // running mean of the current stage
  double eta_seconds = 0;
};

// What router validation measured and chose (TrainOptions::router_report; docs/reference/binding_training.md
// "Routers: validation and fallback"). Scores are pseudo-tuple retrieval on the held-out tuples (router_validation.h).
struct RouterValidationReport {
  int64_t held_out = 0;                       // tuples held out from router training (0 = no validation)
  double uniform_score = 0;                   // uniform routing
  std::vector<double> epoch_scores;           // learned routing after each epoch of this session
  int64_t best_epoch = 0;                     // 1-based epoch whose routers were kept
  double best_score = 0;                      // its score
  std::map<std::string, double> alpha;        // per modality: kept share of the router (0 = uniform routing)
  double final_score = 0;                     // the routing written
};

struct TrainOptions {
  uint64_t seed = 0;
  int threads = 0;                 // 0 = all cores
  int projector_epochs = 8;
  // At least this many optimiser steps per projector head: a space with few training pairs gets more epochs than
  // projector_epochs (ceil(min_steps / batches per epoch)); spaces with enough pairs are untouched. 0 = exactly
  // projector_epochs. Default chosen on the world family's tuning worlds (docs/reference/binding_training.md
  // "Heads: what limits the bound space"): small pools were undertrained, more steps where pools are large and
  // pseudo pairs noisy memorise the noise (100 already loses up to 0.027 on a tuning world; 60 loses <= 0.002).
  int64_t projector_min_steps = 60;
  int router_epochs = 8;
  int64_t batch = 256;
  double projector_lr = 1e-3, router_lr = 1e-3, weight_decay = 1e-4;
  double temperature = 0.05;       // InfoNCE temperature (fixed; see the reference doc)
  bool decoupling = true;          // L_dec on the text router
  double decoupling_weight = 1.0;
  // L_dec asks for a family mass of at least this much ("mainly" the family's experts): the cross-entropy is
  // clipped at -log(margin), so it stops pulling once p(family) >= margin. 1 = plain cross-entropy.
  double decoupling_margin = 0.5;
  // Target for modalities the backbone does not cover (audio, 3D with an image-text backbone): the backbone's
  // embedding of the tuple's text member ("text", default), image member ("image"), or the normalised mean of
  // every member it covers ("mean"). Measured in docs/reference/binding_training.md, "Targets".
  std::string uncovered_target = "text";
  // Which training pairs an uncovered modality's input contributes (issue 16 item 4; docs/reference/binding_training.md
  // "Heads: what limits the bound space"). Such a pair's target is a member the miner linked to the input by
  // retrieval, so it is only as right as the hops between the two members:
  //   "all"      every tuple (the method before issue 16 item 4);
  //   "anchored" only tuples whose anchor is the input or the target member (one hop between them, not two);
  //   "none"     no uncovered pairs: the head learns the space from its covered modalities only and relies on the
  //              expert's own alignment for the uncovered one.
  std::string uncovered_pairs = "all";
  // Of the uncovered pairs left by uncovered_pairs, keep this share: those whose hops are the most similar (the
  // tuples' score, the lower of the two members'), ranked within each anchor modality (scores of different hops
  // are not on one scale). 1 = keep all. In (0, 1].
  double uncovered_keep = 1.0;
  // Router validation: this share of the tuples (at least 64 of them, else none) is held out from router
  // training; after every router epoch the routers are scored on it, the best epoch is kept, then each routed
  // modality's router is shrunk toward uniform routing (last layer x alpha, alpha in {1, 0.5, 0.25, 0}; 0 is
  // exactly uniform routing) as far as the held-out score does not drop by more than router_min_gain. 0 = off:
  // the last epoch's routers, as trained.
  double router_validation = 0.1;
  double router_min_gain = 0.002;
  // A router also has to beat the held-out set's noise: a smaller alpha is kept when its score is within
  // max(router_min_gain, router_noise_z x the standard error of the paired score difference) of the best alpha's
  // (paired over the same held-out queries). 0 = min_gain only.
  double router_noise_z = 1.0;
  // When router_validation > 0 but too few tuples can be held out (fewer than 64): "uniform" routing (default; an
  // unvalidated router has not earned its place) or the routers as "trained".
  std::string router_unvalidated = "uniform";
  // Which held-out member pairs validation scores: "indirect" = only pairs the miner did not link by a direct hop
  // (a direct hop's experts reproduce their own neighbours, errors included, so those pairs reward routing to
  // the miner); "all" = every pair of every held-out tuple.
  std::string router_validation_pairs = "indirect";
  // Held-out score: "top1" accuracy of finding the tuple's own member, its mean reciprocal rank ("mrr"), or
  // "noise": minus each routed embedding's estimated error variance (training/slot_noise.h) relative to uniform
  // routing's, mean over modalities with >= 3 slots (needs no pairing, so mining errors cannot bias it).
  std::string router_validation_metric = "noise";
  // Router loss = router_align_weight x L_align + decoupling_weight x L_dec + router_noise_weight x L_noise, where
  // L_noise is the routed embeddings' estimated error variance relative to uniform routing's (slot_noise.h;
  // modalities with >= 3 slots): it pulls each router toward the spaces that agree with the others on that input.
  // Defaults: the "denoise" objective (set_router_objective).
  double router_align_weight = 1.0;
  double router_noise_weight = 1.0;
  // true: L_align trains only the routers whose slot noise L_noise cannot identify (fewer than 3 slots); the others
  // learn from L_noise (and the text router from L_dec) alone. false: L_align trains every router.
  bool router_align_unidentified_only = true;
  // true: the text router is shrunk only as far as the held-out texts keep their split by source family (L_dec).
  // false (default): validation shrinks it like any other router. Measured on the world family (tuning worlds
  // 0-11): keeping L_dec's split cost -0.006 class P@1 on average against uniform routing, shrinking it -0.000.
  // Default (the "denoise" objective): true, with router_decoupling_slack 0.1 (chosen on the family's tuning worlds
  // 0-23 and the synthetic reliability worlds; docs/reference/binding_training.md "Routers trained to denoise").
  bool router_text_keeps_decoupling = true;
  // With router_text_keeps_decoupling: how far above the trained router's held-out L_dec a shrunk text router may go.
  double router_decoupling_slack = 0.1;
  RouterValidationReport* router_report = nullptr;  // filled when not null
  int64_t materialise_bytes = int64_t{2} << 30;  // gather a space's training pairs into RAM below this size, else stream
  // Train a space's K heads together (training/head_bank.h: same math, no autograd, heads spread over the
  // threads); used when the pairs are materialised and there is one rank. false = one torch::nn head at a time.
  bool head_bank = true;
  // Train the routers as one bank (training/router_bank.h: same math, no autograd); used when the slot embeddings
  // are cached (materialise_bytes), there is one rank and at least two modalities train. false = the autograd loop.
  bool router_bank = true;
  std::filesystem::path state_file;  // resumable state (written atomically after each head / router epoch); empty = none
  bool resume = false;
  std::function<void(const TrainProgress&)> progress;
  // Data parallel over several ranks (docs/SCALING.md): each rank computes a contiguous share of every
  // global batch (BatchNorm statistics and the loss over the whole batch, gradients summed), so the result
  // is the single-process one up to rounding; only rank 0 writes the state file. Null = one process.
  distributed::DistributedContext* dist = nullptr;
};

// Named router objectives (`omnibind train --router-objective`; docs/reference/binding_training.md "Routers trained
// to denoise"):
//   "denoise" (the TrainOptions defaults): a router with >= 3 slots learns from L_noise (each input routed toward
//             the spaces that agree with the others on it) and is validated by its held-out members' estimated error
//             variance: no pseudo pairing, so mining errors cannot bias what it learns or how it is judged. A router
//             with fewer slots (noise not identifiable) learns from L_align and is validated by pseudo-tuple
//             retrieval on indirectly linked pairs, as in "paper". L_dec on the text router in both.
//   "paper":  OmniBind's objective: L_align over every modality pair plus L_dec on the text router, validated by
//             pseudo-tuple retrieval on indirectly linked held-out pairs (the method before issue 16's stop 25).
// InputError naming the valid objectives otherwise.
void set_router_objective(TrainOptions& options, const std::string& name);

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Trains projectors then routers on `tuples` mined from `pool`; returns the official-layout state
// dict (float32). InputError when the pool lacks an expert the config names, dims disagree, etc.
NamedTensors train_binding(const EmbeddingPool& pool, const TupleSet& tuples, const binding::BindingConfig& config,
                           const TrainOptions& options);

// InputError (one line naming the flag) for bad head options: uncovered_target, uncovered_pairs, uncovered_keep,
// projector_min_steps. train_binding checks them too; `train` calls it before mining.
void check_head_target_options(const TrainOptions& options);

// The tuple rows (int64, ascending) whose pair (input = `space`'s embedding of the `modality` member, target = the
// backbone's embedding of the target member) trains `space`'s heads: every tuple when the backbone covers
// `modality`, else those TrainOptions::uncovered_pairs / uncovered_keep select. What train_binding uses.
at::Tensor head_training_rows(const EmbeddingPool& pool, const TupleSet& tuples, const binding::BindingConfig& config,
                              const std::string& modality, const TrainOptions& options);

// The inference model of a state dict fresh from train_binding (float32, no copy of the tensors): what
// users will run, for evaluating right after training.
binding::OmniBindModel load_trained_model(const NamedTensors& state, const binding::BindingConfig& config);

// Writes the state dict with the binding config in the metadata (`binding_config`), as
// safetensors or .pt by extension, atomically.
void write_binding_checkpoint(const std::filesystem::path& path, const NamedTensors& state,
                              const binding::BindingConfig& config);

// Checks that the pool can train `config` (every expert present with the config's dims, backbone
// present, router inputs present); InputError naming the first problem.
void check_pool_against_config(const EmbeddingPool& pool, const binding::BindingConfig& config);

}  // namespace omnibind::training
