#include "omnibind/training/binding_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/distributed/data_parallel.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/head_bank.h"
#include "omnibind/training/router_bank.h"
#include "omnibind/training/router_validation.h"
#include "omnibind/training/slot_noise.h"

namespace omnibind::training {
namespace fs = std::filesystem;
using binding::BindingConfig;
using binding::ExpertSpec;

namespace {

// ---- modules with the official child names (Sequential children are "0", "1", ...) -----------

// Head2.mlps: 0 Linear(d, H), 1 BN(H), 2 ReLU, 3 Linear(H, D), 4 BN(D); output L2-normalised outside.
torch::nn::Sequential make_head(int64_t in, int64_t hidden, int64_t out) {
  return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::BatchNorm1d(hidden), torch::nn::ReLU(),
                               torch::nn::Linear(hidden, out), torch::nn::BatchNorm1d(out));
}

// router: 0 Linear, 1 BN, 2 ReLU, 3 Linear, 4 BN, 5 Tanh, 6 Linear; sigmoid outside (binding/router.h).
torch::nn::Sequential make_router(int64_t in, const std::vector<int64_t>& hidden, int64_t slots) {
  return torch::nn::Sequential(torch::nn::Linear(in, hidden.at(0)), torch::nn::BatchNorm1d(hidden.at(0)), torch::nn::ReLU(),
                               torch::nn::Linear(hidden.at(0), hidden.at(1)), torch::nn::BatchNorm1d(hidden.at(1)),
                               torch::nn::Tanh(), torch::nn::Linear(hidden.at(1), slots));
}

void append_module(NamedTensors& out, const std::string& prefix, torch::nn::Module& module) {
  for (const auto& p : module.named_parameters()) out.emplace_back(prefix + p.key(), p.value().detach().clone());
  for (const auto& b : module.named_buffers()) out.emplace_back(prefix + b.key(), b.value().detach().clone());
}

// Restores a module from tensors named like append_module wrote them.
void restore_module(torch::nn::Module& module, const std::string& prefix, const std::map<std::string, at::Tensor>& state) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) p.value().copy_(state.at(prefix + p.key()));
  for (auto& b : module.named_buffers()) b.value().copy_(state.at(prefix + b.key()));
}

at::Tensor normalise(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

// Symmetric InfoNCE between row-aligned unit vectors a, b [B, D].
at::Tensor info_nce(const at::Tensor& a, const at::Tensor& b, double temperature) {
  at::Tensor logits = at::mm(a, b.t()) / temperature;
  at::Tensor target = at::arange(a.size(0), at::kLong);
  return (torch::nn::functional::cross_entropy(logits, target) + torch::nn::functional::cross_entropy(logits.t(), target)) / 2;
}

at::Tensor permutation(int64_t n, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randperm(n, gen, at::kLong);
}

// torch::optim keys its per-parameter state by the TensorImpl address, as a string.
std::string param_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

uint64_t mix(uint64_t a, uint64_t b) { return (a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2))) * 0xBF58476D1CE4E5B9ull; }

// ---- resumable state ---------------------------------------------------------------------------

struct RunState {
  std::map<std::string, at::Tensor> tensors;  // finished heads, routers (+ optimiser moments)
  int64_t heads_done = 0;                     // over every space, in training order
  int64_t router_epochs_done = 0;
};

std::string run_fingerprint(const BindingConfig& config, const TrainOptions& o, int64_t tuples) {
  return binding::binding_config_to_json(config) + "|seed=" + std::to_string(o.seed) + "|pe=" + std::to_string(o.projector_epochs) +
         "|re=" + std::to_string(o.router_epochs) + "|b=" + std::to_string(o.batch) + "|t=" + std::to_string(tuples) +
         "|dec=" + std::to_string(o.decoupling) + (o.uncovered_target != "text" ? "|target=" + o.uncovered_target : "") +
         (o.uncovered_pairs != "all" ? "|upairs=" + o.uncovered_pairs : "") +
         (o.uncovered_keep < 1.0 ? "|ukeep=" + std::to_string(o.uncovered_keep) : "") +
         (o.projector_min_steps > 0 ? "|minsteps=" + std::to_string(o.projector_min_steps) : "") +
         (o.router_align_weight != 1.0 ? "|walign=" + std::to_string(o.router_align_weight) : "") +
         (o.router_noise_weight != 0.0 ? "|wnoise=" + std::to_string(o.router_noise_weight) : "") +
         (o.router_align_unidentified_only ? "|align-unidentified" : "") +
         (o.router_unvalidated != "uniform" ? "|unvalidated=" + o.router_unvalidated : "") +
         (o.decoupling_margin < 1.0 ? "|margin=" + std::to_string(o.decoupling_margin) : "") +
         (o.router_validation > 0 ? "|rv=" + std::to_string(o.router_validation) + "/" + std::to_string(o.router_min_gain) +
                                        "/" + o.router_validation_pairs + "/" + o.router_validation_metric +
                                        "/z" + std::to_string(o.router_noise_z) + (o.router_text_keeps_decoupling ? "" : "/text-free")
                                  : "");
}

void save_state(const TrainOptions& o, const RunState& s, const std::string& fingerprint) {
  if (o.state_file.empty() || (o.dist && !o.dist->is_root())) return;
  NamedTensors list(s.tensors.begin(), s.tensors.end());
  if (list.empty()) list.emplace_back("__empty__", at::zeros({1}));
  tensor_io::write_tensors(o.state_file.string(), list,
                           {{"heads_done", std::to_string(s.heads_done)},
                            {"router_epochs_done", std::to_string(s.router_epochs_done)},
                            {"fingerprint", fingerprint}});
}

RunState load_state(const TrainOptions& o, const std::string& fingerprint) {
  RunState s;
  if (!o.resume || o.state_file.empty() || !fs::exists(o.state_file)) return s;
  auto file = tensor_io::read_safetensors(o.state_file.string());
  if (file.metadata["fingerprint"] != fingerprint)
    throw InputError(o.state_file.string() + ": was written by a run with another config, seed, schedule or tuples; "
                     "delete it or drop --resume");
  for (const auto& name : file.tensors.names())
    if (name != "__empty__") s.tensors[name] = tensor_io::to_tensor(file.tensors.at(name)).clone();
  s.heads_done = std::stoll(file.metadata["heads_done"]);
  s.router_epochs_done = std::stoll(file.metadata["router_epochs_done"]);
  return s;
}

// ---- progress ----------------------------------------------------------------------------------

class Reporter {
 public:
  Reporter(const TrainOptions& o, double total_units) : o_(o), total_(total_units), start_(clock::now()) {}
  void report(const std::string& stage, double units_done, double loss, double units_this_session) {
    if (!o_.progress) return;
    const double elapsed = std::chrono::duration<double>(clock::now() - start_).count();
    const double rate = units_this_session > 0 ? elapsed / units_this_session : 0;
    o_.progress({stage, units_done / total_, loss, rate * (total_ - units_done)});
  }

 private:
  using clock = std::chrono::steady_clock;
  const TrainOptions& o_;
  double total_;
  clock::time_point start_;
};

// Which member is the target for a modality of a space: the backbone's embedding of the same
// member when the backbone covers the modality, else of the tuple's `uncovered_target` member (then
// text, image, audio, point: the first the backbone covers).
std::string target_modality(const EmbeddingPool& pool, const ExpertSpec& backbone, const std::string& modality,
                            const std::string& uncovered_target) {
  if (backbone.covers(modality) && pool.has(modality, backbone.name)) return modality;
  if (uncovered_target == "mean") return "mean";
  for (const std::string& m : {uncovered_target, std::string("text"), std::string("image"), std::string("audio"), std::string("point")})
    if (backbone.covers(m) && pool.has(m, backbone.name)) return m;
  throw InputError("the backbone '" + backbone.name + "' has no embeddings in the pool");
}

// The backbone's embeddings of the target members of `rows` [B] -> [B, D]; "mean": the normalised mean of
// every member the backbone covers (absent members are zero rows in gather_members).
at::Tensor target_rows(const EmbeddingPool& pool, const TupleSet& tuples, const ExpertSpec& backbone, const std::string& target,
                       const at::Tensor& rows) {
  if (target != "mean") return gather_members(pool, tuples, tuple_slot(target), backbone.name, rows);
  at::Tensor sum;
  for (const auto& m : tuple_modalities())
    if (backbone.covers(m) && pool.has(m, backbone.name)) {
      at::Tensor t = gather_members(pool, tuples, tuple_slot(m), backbone.name, rows);
      sum = sum.defined() ? sum + t : t;
    }
  return normalise(sum);
}

}  // namespace

void check_head_target_options(const TrainOptions& o) {
  if (o.uncovered_target != "text" && o.uncovered_target != "image" && o.uncovered_target != "mean")
    throw InputError("--uncovered-target must be text, image or mean, got '" + o.uncovered_target + "'");
  if (o.uncovered_pairs != "all" && o.uncovered_pairs != "anchored" && o.uncovered_pairs != "none")
    throw InputError("--uncovered-pairs must be all, anchored or none, got '" + o.uncovered_pairs + "'");
  if (o.projector_min_steps < 0) throw InputError("--min-steps-proj must be 0 or more, got " + std::to_string(o.projector_min_steps));
  if (!(o.uncovered_keep > 0.0 && o.uncovered_keep <= 1.0))
    throw InputError("--uncovered-keep must be in (0, 1], got " + std::to_string(o.uncovered_keep));
}

namespace {

// Tuple rows whose (input modality, target) pair trains a head (TrainOptions::uncovered_pairs / uncovered_keep).
// Covered inputs (target == input modality) keep every tuple: their target is the same item. Uncovered inputs keep
// the tuples the options allow, in tuple order.
at::Tensor pair_tuple_rows(const EmbeddingPool& pool, const TupleSet& tuples, const ExpertSpec& backbone, const std::string& input,
                           const std::string& target, const TrainOptions& o) {
  const int64_t T = tuples.size();
  if (target == input || (o.uncovered_pairs == "all" && o.uncovered_keep >= 1.0)) return at::arange(T, at::kLong);
  if (o.uncovered_pairs == "none") return at::empty({0}, at::kLong);
  std::vector<int> targets;  // slots of the target members
  if (target == "mean") {
    for (const auto& m : tuple_modalities())
      if (backbone.covers(m) && pool.has(m, backbone.name)) targets.push_back(tuple_slot(m));
  } else {
    targets.push_back(tuple_slot(target));
  }
  const int in = tuple_slot(input);
  // Kept by uncovered_pairs: "anchored" = the anchor is the input member or a target member.
  at::Tensor keep = at::ones({T}, at::kBool);
  if (o.uncovered_pairs == "anchored") {
    keep = tuples.anchor.eq(in);
    for (int t : targets) keep = keep.logical_or(tuples.anchor.eq(t));
  }
  // Reliability: the lowest hop similarity of the pair's members (the anchor's is 1).
  at::Tensor score = tuples.score.select(1, in).clone();
  for (int t : targets) score = at::minimum(score, tuples.score.select(1, t));
  if (o.uncovered_keep < 1.0) {
    at::Tensor kept = at::zeros({T}, at::kBool);
    for (int a = 0; a < 4; ++a) {
      at::Tensor rows = keep.logical_and(tuples.anchor.eq(a)).nonzero().squeeze(1);
      const int64_t n = rows.size(0);
      if (n == 0) continue;
      const int64_t take = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.uncovered_keep * static_cast<double>(n))));
      at::Tensor order = std::get<1>(at::sort(score.index_select(0, rows), /*stable=*/true, /*dim=*/0, /*descending=*/true));
      kept.index_fill_(0, rows.index_select(0, order.narrow(0, 0, take)), true);
    }
    keep = kept;
  }
  return keep.nonzero().squeeze(1);
}

}  // namespace

at::Tensor head_training_rows(const EmbeddingPool& pool, const TupleSet& tuples, const BindingConfig& config, const std::string& modality,
                              const TrainOptions& options) {
  check_head_target_options(options);
  const ExpertSpec* backbone = config.find(config.backbone);
  if (!backbone) throw InputError("binding config: the backbone '" + config.backbone + "' is not among the experts");
  return pair_tuple_rows(pool, tuples, *backbone, modality, target_modality(pool, *backbone, modality, options.uncovered_target), options);
}

void check_pool_against_config(const EmbeddingPool& pool, const BindingConfig& config) {
  const std::string where = pool.dir().string();
  if (config.backbone.empty()) throw InputError("binding config: 'backbone' is required for training");
  for (const auto& e : config.experts) {
    const PoolExpert* pe = pool.manifest().find(e.name);
    if (!pe) throw InputError(where + ": the config binds expert '" + e.name + "' but the pool's manifest has no such expert");
    if (e.dim > 0 && e.dim != pe->dim)
      throw InputError(where + ": expert '" + e.name + "' is " + std::to_string(pe->dim) + "-d in the pool but " +
                       std::to_string(e.dim) + "-d in the config");
    for (const auto& m : e.modalities)
      if (pool.has_modality(m) && !pool.has(m, e.name))
        throw InputError(where + ": the pool has no '" + e.name + "' embeddings of " + m);
  }
  for (const auto& [m, names] : config.router_inputs)
    for (const auto& n : names)
      if (pool.has_modality(m) && !pool.has(m, n))
        throw InputError(where + ": router input '" + n + "' has no " + m + " embeddings in the pool");
}

void set_router_objective(TrainOptions& o, const std::string& name) {
  struct Objective {
    const char* name;
    double align, noise;
    bool align_unidentified_only, decoupling, text_keeps_decoupling;
    double decoupling_slack;
    const char* validation_metric;
  };
  static const Objective objectives[] = {
      {"denoise", 1.0, 1.0, true, true, true, 0.1, "noise"},
      {"paper", 1.0, 0.0, false, true, false, 0.01, "top1"},
  };
  for (const Objective& x : objectives) {
    if (name != x.name) continue;
    o.router_align_weight = x.align;
    o.router_noise_weight = x.noise;
    o.router_align_unidentified_only = x.align_unidentified_only;
    o.decoupling = x.decoupling;
    o.router_text_keeps_decoupling = x.text_keeps_decoupling;
    o.router_decoupling_slack = x.decoupling_slack;
    o.router_validation_metric = x.validation_metric;
    return;
  }
  throw InputError("router objective must be denoise or paper, got '" + name + "'");
}

NamedTensors train_binding(const EmbeddingPool& pool, const TupleSet& tuples, const BindingConfig& config_in,
                           const TrainOptions& o) {
  BindingConfig config = config_in;
  config.validate();
  check_pool_against_config(pool, config);
  for (auto& e : config.experts) e.dim = pool.dim(e.name);
  if (tuples.size() < 2) throw InputError("training needs at least 2 tuples, got " + std::to_string(tuples.size()));
  if (o.batch < 2) throw InputError("--batch must be at least 2");
  check_head_target_options(o);
  if (o.router_validation_pairs != "indirect" && o.router_validation_pairs != "all")
    throw InputError("router validation pairs must be indirect or all, got '" + o.router_validation_pairs + "'");
  if (o.router_validation_metric != "top1" && o.router_validation_metric != "mrr" && o.router_validation_metric != "noise")
    throw InputError("router validation metric must be top1, mrr or noise, got '" + o.router_validation_metric + "'");
  if (o.router_unvalidated != "uniform" && o.router_unvalidated != "trained")
    throw InputError("router unvalidated must be uniform or trained, got '" + o.router_unvalidated + "'");
  if (!(o.router_align_weight >= 0) || !(o.router_noise_weight >= 0))
    throw InputError("router loss weights (align, noise) must be >= 0");
  tensor_io::set_compute_threads(o.threads);  // libtorch, FAISS and OpenBLAS pools; <= 0 = every core

  const ExpertSpec& backbone = *config.find(config.backbone);
  const int64_t D = backbone.dim, H = config.projector_hidden, K = config.heads_per_space;
  std::vector<const ExpertSpec*> spaces = config.projected_experts();
  if (const ExpertSpec* ib = config.find(BindingConfig::kImageBind)) spaces.push_back(ib);
  const int64_t T = tuples.size();
  const std::string fingerprint = run_fingerprint(config, o, T);
  RunState state = load_state(o, fingerprint);

  // Data parallel (o.dist with several ranks): this rank's share of a batch, the whole batch's rows of a
  // result (differentiable), forward with synchronised BatchNorm, gradients summed over the ranks.
  distributed::DistributedContext single;
  distributed::DistributedContext& dist = o.dist ? *o.dist : single;
  auto forward = [&](torch::nn::Sequential& m, const at::Tensor& x) {
    return dist.distributed() ? distributed::forward_sync_batch_norm(*m, x, dist) : m->forward(x);
  };
  auto whole_batch = [&](const at::Tensor& local) { return distributed::gather_rows_with_grad(dist, local); };

  const double units = static_cast<double>(spaces.size() * K * o.projector_epochs) + static_cast<double>(o.router_epochs) * 2;
  Reporter reporter(o, units);
  double session_units = 0;

  // ---- 1. projector heads ----------------------------------------------------------------------
  int64_t head_counter = 0;
  for (size_t s = 0; s < spaces.size(); ++s) {
    const ExpertSpec& space = *spaces[s];
    const bool is_ib = space.name == BindingConfig::kImageBind;
    // Training pairs of this space: (tuple, modality) for every modality it covers in the pool; an uncovered
    // modality's tuples as TrainOptions::uncovered_pairs / uncovered_keep select them.
    std::vector<std::pair<std::string, std::string>> mods;  // (input modality, target modality)
    for (const auto& m : space.modalities)
      if (pool.has(m, space.name)) mods.emplace_back(m, target_modality(pool, backbone, m, o.uncovered_target));
    if (mods.empty()) throw InputError(pool.dir().string() + ": expert '" + space.name + "' has no embeddings of its modalities");
    std::vector<at::Tensor> pair_mod_parts, pair_tuple_parts;  // pair id -> (modality index, tuple row)
    for (size_t mi = 0; mi < mods.size(); ++mi) {
      at::Tensor rows = pair_tuple_rows(pool, tuples, backbone, mods[mi].first, mods[mi].second, o);
      pair_tuple_parts.push_back(rows);
      pair_mod_parts.push_back(at::full({rows.size(0)}, static_cast<int64_t>(mi), at::kLong));
    }
    const at::Tensor pair_tuple = at::cat(pair_tuple_parts, 0), pair_mod = at::cat(pair_mod_parts, 0);
    const int64_t N = pair_tuple.size(0);
    if (N < 2) throw InputError("expert '" + space.name + "': fewer than 2 training pairs are left by --uncovered-pairs/--uncovered-keep");
    // Epochs of this space's heads: projector_epochs, more when that many would give a head fewer than
    // projector_min_steps optimiser steps (small pools).
    const int64_t steps_per_epoch = std::max<int64_t>(1, (N - 1 + o.batch - 1) / o.batch);
    const int epochs = static_cast<int>(std::max<int64_t>(o.projector_epochs, (o.projector_min_steps + steps_per_epoch - 1) / steps_per_epoch));
    const double epoch_units = static_cast<double>(o.projector_epochs) / std::max(1, epochs);  // progress per epoch, in nominal epochs
    const int64_t bytes = N * (space.dim + D) * 4;
    at::Tensor all_x, all_y;  // materialised when small enough
    auto gather_pairs = [&](const at::Tensor& ids) {  // ids in [0, N): pair = (pair_tuple[ids], mods[pair_mod[ids]])
      if (ids.numel() == 0) return std::make_pair(at::empty({0, space.dim}), at::empty({0, D}));  // a rank's empty share
      std::vector<at::Tensor> xs, ys, order;
      const at::Tensor id_mod = pair_mod.index_select(0, ids);
      for (size_t mi = 0; mi < mods.size(); ++mi) {
        at::Tensor sel = id_mod.eq(static_cast<int64_t>(mi)).nonzero().squeeze(1);
        if (sel.numel() == 0) continue;
        at::Tensor rows = pair_tuple.index_select(0, ids.index_select(0, sel));
        xs.push_back(gather_members(pool, tuples, tuple_slot(mods[mi].first), space.name, rows));
        ys.push_back(target_rows(pool, tuples, backbone, mods[mi].second, rows));
        order.push_back(sel);
      }
      at::Tensor x = at::cat(xs, 0), y = at::cat(ys, 0), ord = at::cat(order, 0);
      at::Tensor inv = at::empty_like(ord);
      inv.index_copy_(0, ord, at::arange(ord.size(0), at::kLong));
      return std::make_pair(x.index_select(0, inv), y.index_select(0, inv));
    };
    if (bytes <= o.materialise_bytes) std::tie(all_x, all_y) = gather_pairs(at::arange(N, at::kLong));
    auto head_prefix = [&](int64_t k) {
      return (is_ib ? "ib_projs." + std::to_string(k) : "projs." + std::to_string(static_cast<int64_t>(s) * K + k)) + ".Head2.mlps.";
    };

    if (o.head_bank && all_x.defined() && !dist.distributed()) {  // the K heads as one bank (head_bank.h)
      const int64_t first = std::clamp<int64_t>(state.heads_done - head_counter, 0, K);  // resumed: heads already done
      if (first < K) {
        HeadBankOptions bo;
        bo.lr = o.projector_lr;
        bo.weight_decay = o.weight_decay;
        bo.temperature = o.temperature;
        HeadBank bank(K - first, space.dim, H, D, bo);
        std::vector<uint64_t> seeds;
        for (int64_t k = first; k < K; ++k) {  // the per-head loop's initialisation, head by head
          seeds.push_back(mix(mix(o.seed, s + 1), k + 1));
          at::manual_seed(seeds.back());
          torch::nn::Sequential head = make_head(space.dim, H, D);
          NamedTensors init;
          append_module(init, "", *head);
          bank.set_head(k - first, init);
        }
        for (int epoch = 0; epoch < epochs; ++epoch) {
          std::vector<at::Tensor> orders;
          for (uint64_t seed : seeds) orders.push_back(permutation(N, mix(seed, epoch + 1)));
          const std::vector<double> losses = bank.train_epoch(all_x, all_y, orders, o.batch);
          double mean_loss = 0;
          for (double l : losses) mean_loss += l / static_cast<double>(losses.size());
          session_units += static_cast<double>(K - first) * epoch_units;
          reporter.report("projector " + space.name + " heads " + std::to_string(first + 1) + "-" + std::to_string(K) + "/" +
                              std::to_string(K) + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs),
                          static_cast<double>((head_counter + first) * o.projector_epochs) + (epoch + 1) * epoch_units * static_cast<double>(K - first),
                          mean_loss, session_units);
        }
        for (int64_t k = first; k < K; ++k)
          for (auto& [n, t] : bank.head_state(k - first, head_prefix(k))) state.tensors[n] = t;
        state.heads_done = head_counter + K;
        save_state(o, state, fingerprint);
      }
      head_counter += K;
      continue;
    }

    for (int64_t k = 0; k < K; ++k, ++head_counter) {
      const std::string prefix = head_prefix(k);
      if (head_counter < state.heads_done) continue;  // resumed: already trained
      const uint64_t head_seed = mix(mix(o.seed, s + 1), k + 1);
      at::manual_seed(head_seed);
      torch::nn::Sequential head = make_head(space.dim, H, D);
      head->train();
      torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(o.projector_lr).weight_decay(o.weight_decay));
      double running = 0;
      for (int epoch = 0; epoch < epochs; ++epoch) {
        at::Tensor perm = permutation(N, mix(head_seed, epoch + 1));
        double sum = 0;
        int64_t batches = 0;
        for (int64_t b = 0; b + 1 < N; b += o.batch) {
          at::Tensor ids = perm.narrow(0, b, std::min(o.batch, N - b));
          if (ids.size(0) < 2) continue;
          at::Tensor x, y, local = distributed::local_rows(dist, ids);
          if (all_x.defined()) { x = all_x.index_select(0, local); y = all_y.index_select(0, ids); }
          else { std::tie(x, y) = gather_pairs(local); y = dist.all_gather_rows(y, "gathering a batch"); }
          at::Tensor out = whole_batch(normalise(forward(head, x)));
          at::Tensor loss = info_nce(out, y, o.temperature);
          opt.zero_grad();
          loss.backward();
          distributed::all_reduce_gradients(dist, head->parameters());
          opt.step();
          sum += loss.item<double>();
          ++batches;
        }
        running = sum / std::max<int64_t>(1, batches);
        session_units += epoch_units;
        reporter.report("projector " + space.name + " head " + std::to_string(k + 1) + "/" + std::to_string(K) + " epoch " +
                            std::to_string(epoch + 1) + "/" + std::to_string(epochs),
                        static_cast<double>(head_counter * o.projector_epochs) + (epoch + 1) * epoch_units, running, session_units);
      }
      head->eval();
      NamedTensors trained;
      append_module(trained, prefix, *head);
      for (auto& [n, t] : trained) state.tensors[n] = t;
      state.heads_done = head_counter + 1;
      save_state(o, state, fingerprint);
    }
  }

  // ---- 2. routers (projectors frozen) ----------------------------------------------------------
  // Every routed modality of the config gets a router (the checkpoint must be complete); those the
  // pool has no items of keep their seeded initialisation (reported as untrained by `train`).
  std::vector<std::string> modalities, routed;
  for (const auto& m : binding::all_modalities())
    if (!config.slots(m).empty() && config.router_inputs.count(m)) {
      routed.push_back(m);
      if (pool.has_modality(m)) modalities.push_back(m);
    }
  std::map<std::string, torch::nn::Sequential> routers;
  std::vector<at::Tensor> router_params;
  for (const auto& m : routed) {
    int64_t in = 0;
    for (const auto& n : config.router_inputs.at(m)) in += pool.dim(n);
    at::manual_seed(mix(o.seed, 1000 + static_cast<uint64_t>(tuple_slot(m))));
    routers[m] = make_router(in, config.router_hidden, static_cast<int64_t>(config.slots(m).size()));
    if (pool.has_modality(m))
      for (auto& p : routers[m]->parameters()) router_params.push_back(p);
  }
  torch::optim::AdamW opt(router_params, torch::optim::AdamWOptions(o.router_lr).weight_decay(o.weight_decay));
  // Resume: routers and the optimiser's moments as of the last finished epoch.
  if (state.router_epochs_done > 0) {
    for (auto& [m, r] : routers) restore_module(*r, binding::router_prefix(m), state.tensors);
    for (size_t i = 0; i < router_params.size(); ++i) {
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      st->step(state.tensors.at("__opt." + std::to_string(i) + ".step").item<int64_t>());
      st->exp_avg(state.tensors.at("__opt." + std::to_string(i) + ".exp_avg").clone());
      st->exp_avg_sq(state.tensors.at("__opt." + std::to_string(i) + ".exp_avg_sq").clone());
      opt.state()[param_key(router_params[i])] = std::move(st);
    }
  }
  // The frozen projectors, through the inference model (exactly what users will run).
  auto projector_model = [&]() {
    NamedTensors all;
    for (const auto& [n, t] : state.tensors)
      if (n.rfind("projs.", 0) == 0 || n.rfind("ib_projs.", 0) == 0) all.emplace_back(n, t);
    for (auto& [m, r] : routers) append_module(all, binding::router_prefix(m), *r);
    return load_trained_model(all, config);
  };
  const binding::OmniBindModel frozen = projector_model();
  // Family of each text slot (0 audio, 1 image, 2 point): the non-text modalities its expert covers.
  at::Tensor family_mask;
  if (std::find(modalities.begin(), modalities.end(), "text") != modalities.end()) {
    const auto slots = config.slots("text");
    family_mask = at::zeros({static_cast<int64_t>(slots.size()), 3});
    for (size_t i = 0; i < slots.size(); ++i) {
      const ExpertSpec* e = config.find(slots[i]);
      std::vector<const ExpertSpec*> members{e};
      if (slots[i] == BindingConfig::kImageBind || !e) {  // the IB slot: IB and/or the backbone
        members = {config.find(BindingConfig::kImageBind), config.find(config.backbone)};
      }
      for (const ExpertSpec* x : members) {
        if (!x) continue;
        if (x->covers("audio")) family_mask[i][0] = 1;
        if (x->covers("image")) family_mask[i][1] = 1;
        if (x->covers("point")) family_mask[i][2] = 1;
      }
    }
  }
  std::optional<at::Tensor> text_source = pool.column("text", "source");

  // Routers in eval mode into the run state (official names), for checkpoints and the result.
  auto store_routers = [&] {
    for (auto& [m, r] : routers) {
      r->eval();
      NamedTensors t;
      append_module(t, binding::router_prefix(m), *r);
      for (auto& [n, v] : t) state.tensors[n] = v;
    }
  };
  auto inputs_for = [&](const std::string& m, const at::Tensor& rows) {
    std::map<std::string, at::Tensor> in;
    for (const auto& n : frozen.required_inputs(m)) in[n] = gather_members(pool, tuples, tuple_slot(m), n, rows);
    return in;
  };
  // The frozen projectors' slot embeddings of every tuple [T, S, D], computed once instead of in every router
  // epoch (they cannot change), when they fit in materialise_bytes; else per batch as before.
  std::map<std::string, at::Tensor> slot_cache;
  {
    int64_t slot_bytes = 0;
    for (const auto& m : modalities) slot_bytes += T * static_cast<int64_t>(config.slots(m).size()) * D * 4;
    if (o.router_epochs > state.router_epochs_done && slot_bytes <= o.materialise_bytes) {
      at::NoGradGuard no_grad;
      for (const auto& m : modalities) {
        std::vector<at::Tensor> parts;
        for (int64_t b = 0; b < T; b += 4096)
          parts.push_back(frozen.slot_embeddings(m, inputs_for(m, at::arange(b, std::min(T, b + 4096), at::kLong))));
        slot_cache[m] = at::cat(parts, 0);
      }
    }
  }
  // L_dec of the text members of tuples `rows` routed with weights [B, S]; undefined when no text has a known,
  // coverable source family.
  const bool decoupling_on = o.decoupling && family_mask.defined() && text_source.has_value();
  auto decoupling_loss = [&](const at::Tensor& rows, const at::Tensor& text_weights, bool clipped = true) {
    at::Tensor text_rows = tuples.index.index_select(0, rows).select(1, tuple_slot("text")).select(1, 0);
    at::Tensor src = text_source->index_select(0, text_rows.clamp_min(0));
    at::Tensor known = src.ge(0).logical_and(text_rows.ge(0));
    // Only families some slot covers can be asked for.
    at::Tensor coverable = family_mask.sum(0).gt(0).index_select(0, src.clamp_min(0));
    known = known.logical_and(coverable);
    if (!known.any().item<bool>()) return at::Tensor();
    at::Tensor mass = at::mm(text_weights, family_mask).clamp_min(1e-8);  // [B, 3]
    at::Tensor p = mass / mass.sum(1, true);
    at::Tensor sel = known.nonzero().squeeze(1);
    at::Tensor nll = -p.index_select(0, sel).log().gather(1, src.index_select(0, sel).unsqueeze(1));
    if (clipped && o.decoupling_margin < 1.0) nll = at::relu(nll + std::log(o.decoupling_margin));
    return nll.mean();
  };
  // Router validation (router_validation.h): held-out tuples, their frozen slot embeddings and router inputs.
  const RouterSplit split = split_router_tuples(T, o.router_validation, mix(o.seed, 4242));
  const int64_t T_router = split.train.size(0);
  DirectHops direct;
  if (o.router_validation_pairs == "indirect" && split.val.numel() > 0)
    direct = direct_hops(pool, tuples);
  RouterValidation validation(split.val, modalities, config, [&](const std::string& m, const at::Tensor& rows) {
    auto in = inputs_for(m, rows);
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> parts;
    for (const auto& n : config.router_inputs.at(m)) parts.push_back(in.at(n));
    return std::make_pair(frozen.slot_embeddings(m, in), at::cat(parts, 1));
  }, tuples, direct.empty() ? nullptr : &direct);
  validation.use_reciprocal_rank(o.router_validation_metric == "mrr");
  validation.use_noise(o.router_validation_metric == "noise");
  auto router_logits = [&](const std::string& m, const at::Tensor& x) {
    at::NoGradGuard no_grad;
    routers[m]->eval();
    return routers[m]->forward(x);
  };
  RouterValidationReport report;
  report.held_out = split.val.size(0);
  if (validation.active()) report.uniform_score = validation.score({}, router_logits, 0.0);
  // Best epoch so far (router tensors, official names) survives a resume through the state file.
  auto snapshot_best = [&](int64_t epoch, double score) {
    for (auto& [m, r] : routers) {
      NamedTensors t;
      append_module(t, binding::router_prefix(m), *r);
      for (auto& [n, v] : t) state.tensors["__best." + n] = v;
    }
    state.tensors["__best_score"] = at::full({1}, score, at::kDouble);
    state.tensors["__best_epoch"] = at::full({1}, epoch, at::kLong);
  };
  // The trained routers as one bank (router_bank.h: the loop's math written out, no autograd) when their slot
  // embeddings are cached, there is one rank and at least two modalities train; else the loop below.
  // The modules and the optimiser state stay the record: the bank is loaded from them and written back after
  // every epoch, so validation, checkpoints and resume see the same tensors either way.
  std::optional<RouterBank> bank;
  if (o.router_bank && !dist.distributed() && modalities.size() >= 2 && slot_cache.size() == modalities.size() &&
      o.router_epochs > state.router_epochs_done) {
    std::vector<RouterSpec> specs;
    std::vector<at::Tensor> xs, slots;
    const at::Tensor all_rows = at::arange(T, at::kLong);
    for (const auto& m : modalities) {
      RouterSpec rs;
      rs.modality = m;
      for (const auto& n : config.router_inputs.at(m)) rs.in += pool.dim(n);
      rs.hidden1 = config.router_hidden.at(0);
      rs.hidden2 = config.router_hidden.at(1);
      rs.slots = static_cast<int64_t>(config.slots(m).size());
      rs.score_scale = m == "text" ? config.text_temperature : 1.0;
      specs.push_back(rs);
      std::vector<at::Tensor> parts;
      for (const auto& n : config.router_inputs.at(m)) parts.push_back(gather_members(pool, tuples, tuple_slot(m), n, all_rows));
      xs.push_back(at::cat(parts, 1).to(at::kFloat).contiguous());
      slots.push_back(slot_cache.at(m).to(at::kFloat).contiguous());
    }
    RouterBankOptions bo;
    bo.lr = o.router_lr;
    bo.weight_decay = o.weight_decay;
    bo.temperature = o.temperature;
    bo.decoupling_weight = o.decoupling_weight;
    bo.decoupling_margin = o.decoupling_margin;
    bo.align_weight = o.router_align_weight;
    bo.noise_weight = o.router_noise_weight;
    bo.align_unidentified_only = o.router_align_unidentified_only;
    bank.emplace(specs, D, bo);
    at::Tensor family;  // per tuple: its text member's source family when L_dec asks for it, else -1 (decoupling_loss's rule)
    if (decoupling_on && std::find(modalities.begin(), modalities.end(), "text") != modalities.end()) {
      const at::Tensor text_rows = tuples.index.select(1, tuple_slot("text")).select(1, 0);
      const at::Tensor src = text_source->index_select(0, text_rows.clamp_min(0));
      const at::Tensor known = src.ge(0).logical_and(text_rows.ge(0)).logical_and(
          family_mask.sum(0).gt(0).index_select(0, src.clamp_min(0)));
      family = at::where(known, src, at::full_like(src, -1));
    }
    bank->set_data(xs, slots, family, family.defined() ? family_mask : at::Tensor());
    for (size_t k = 0; k < modalities.size(); ++k) {
      NamedTensors named;
      append_module(named, "", *routers[modalities[k]]);
      bank->set_router(static_cast<int64_t>(k), named);
      for (int i = 0; i < RouterBank::kParams; ++i) {  // resumed: the optimiser's moments
        auto it = opt.state().find(param_key(router_params[k * RouterBank::kParams + i]));
        if (it == opt.state().end()) continue;
        auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
        bank->set_adam_state(static_cast<int64_t>(k), i, {st.step(), st.exp_avg(), st.exp_avg_sq()});
      }
    }
  }
  // The bank's routers and moments back into the modules and the optimiser.
  auto bank_to_modules = [&] {
    for (size_t k = 0; k < modalities.size(); ++k) {
      const NamedTensors named = bank->router_state(static_cast<int64_t>(k));
      restore_module(*routers[modalities[k]], "", std::map<std::string, at::Tensor>(named.begin(), named.end()));
      for (int i = 0; i < RouterBank::kParams; ++i) {
        const RouterBank::AdamState a = bank->adam_state(static_cast<int64_t>(k), i);
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(a.step);
        st->exp_avg(a.exp_avg);
        st->exp_avg_sq(a.exp_avg_sq);
        opt.state()[param_key(router_params[k * RouterBank::kParams + i])] = std::move(st);
      }
    }
  };
  for (int64_t epoch = state.router_epochs_done; epoch < o.router_epochs; ++epoch) {
    for (auto& [m, r] : routers) r->train();
    at::Tensor perm = split.train.index_select(0, permutation(T_router, mix(o.seed, 7777 + static_cast<uint64_t>(epoch))));
    double sum = 0;
    int64_t batches = 0;
    if (bank) {  // the whole epoch in the bank; sum = its mean loss over the batches
      sum = bank->train_epoch(perm, o.batch);
      batches = 1;
      bank_to_modules();
    }
    for (int64_t b = 0; !bank && b + 1 < T_router; b += o.batch) {
      at::Tensor rows = perm.narrow(0, b, std::min(o.batch, T_router - b));
      if (rows.size(0) < 2) continue;
      const at::Tensor local = distributed::local_rows(dist, rows);
      std::map<std::string, at::Tensor> unified, weights;
      at::Tensor noise_loss = at::zeros({});
      int64_t noise_terms = 0;
      for (const auto& m : modalities) {
        auto in = inputs_for(m, local);
        at::Tensor slots;
        {
          at::NoGradGuard no_grad;
          slots = slot_cache.count(m) ? slot_cache.at(m).index_select(0, local) : frozen.slot_embeddings(m, in);  // [B, S, D]
        }
        std::vector<at::Tensor> parts;
        for (const auto& n : config.router_inputs.at(m)) parts.push_back(in.at(n));
        at::Tensor s = at::sigmoid(forward(routers[m], at::cat(parts, 1)));
        if (m == "text") s = s * config.text_temperature;
        at::Tensor w = at::softmax(s, -1);
        weights[m] = whole_batch(w);
        unified[m] = whole_batch(normalise((slots * w.unsqueeze(2)).sum(1)));
        // A router whose slot noise L_noise identifies does not learn from L_align (router_align_unidentified_only).
        if (o.router_align_unidentified_only && slots.size(1) >= 3) unified[m] = unified[m].detach();
        if (o.router_noise_weight > 0) {  // L_noise (slot_noise.h), relative to uniform routing's variance
          const at::Tensor noise = slot_noise_variance(whole_batch(slots));
          if (noise.defined()) {
            const double S = static_cast<double>(noise.size(1));
            const at::Tensor uniform = mixture_noise(at::full_like(noise, 1.0 / S), noise).mean().clamp_min(1e-12);
            noise_loss = noise_loss + mixture_noise(weights[m], noise).mean() / uniform;
            ++noise_terms;
          }
        }
      }
      at::Tensor loss = at::zeros({});
      int64_t pairs = 0;
      for (size_t i = 0; i < modalities.size(); ++i)
        for (size_t j = i + 1; j < modalities.size(); ++j) {
          loss = loss + info_nce(unified[modalities[i]], unified[modalities[j]], o.temperature);
          ++pairs;
        }
      if (pairs > 0) loss = loss * (o.router_align_weight / static_cast<double>(pairs));
      if (noise_terms > 0) loss = loss + o.router_noise_weight * noise_loss / static_cast<double>(noise_terms);
      if (decoupling_on && weights.count("text")) {
        at::Tensor nll = decoupling_loss(rows, weights["text"]);
        if (nll.defined()) loss = loss + o.decoupling_weight * nll;
      }
      opt.zero_grad();
      loss.backward();
      distributed::all_reduce_gradients(dist, router_params);
      opt.step();
      sum += loss.item<double>();
      ++batches;
    }
    if (validation.active()) {
      const double score = validation.score({}, router_logits, 1.0);
      report.epoch_scores.push_back(score);
      if (!state.tensors.count("__best_score") || score > state.tensors.at("__best_score").item<double>()) snapshot_best(epoch + 1, score);
    }
    session_units += 2;
    reporter.report("router epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.router_epochs),
                    static_cast<double>(spaces.size() * K * o.projector_epochs) + 2.0 * (epoch + 1), sum / std::max<int64_t>(1, batches),
                    session_units);
    // Checkpoint: routers + optimiser moments.
    store_routers();
    for (size_t i = 0; i < router_params.size(); ++i) {
      auto it = opt.state().find(param_key(router_params[i]));
      if (it == opt.state().end()) continue;
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      state.tensors["__opt." + std::to_string(i) + ".step"] = at::full({1}, st.step(), at::kLong);
      state.tensors["__opt." + std::to_string(i) + ".exp_avg"] = st.exp_avg().clone();
      state.tensors["__opt." + std::to_string(i) + ".exp_avg_sq"] = st.exp_avg_sq().clone();
    }
    state.router_epochs_done = epoch + 1;
    save_state(o, state, fingerprint);
  }
  // Each router's last layer x alpha[m] (router_validation.h shrink_router): 0 = exactly uniform routing.
  auto shrink_routers = [&](const std::map<std::string, double>& alpha) {
    for (const auto& m : modalities) {
      auto last = routers[m]->named_parameters();
      last["6.weight"].mul_(alpha.at(m));
      last["6.bias"].mul_(alpha.at(m));
    }
  };
  // Validation: the best epoch's routers, each shrunk toward uniform routing as far as the held-out score allows.
  if (validation.active() && state.tensors.count("__best_score")) {
    torch::NoGradGuard no_grad;
    // What L_dec reached on the held-out texts with the last epoch's text router: the reference the kept text
    // router must still meet (the best epoch by retrieval may predate the decoupling).
    const bool dec_check = decoupling_on && o.router_text_keeps_decoupling && routers.count("text") &&
                           std::find(modalities.begin(), modalities.end(), "text") != modalities.end();
    auto held_out_dec = [&](double a) {
      // Unclipped: with two families uniform routing already meets a 0.5 margin, and the split by family
      // the text router learned is what decoupling means.
      at::Tensor l = decoupling_loss(split.val, validation.weights("text", a, router_logits), false);
      return l.defined() ? l.item<double>() : 0.0;
    };
    const double dec_reference = dec_check ? held_out_dec(1.0) : 0.0;
    NamedTensors last_text;
    if (dec_check) append_module(last_text, binding::router_prefix("text"), *routers["text"]);
    for (auto& [m, r] : routers) restore_module(*r, binding::router_prefix(m), [&] {
      std::map<std::string, at::Tensor> best;
      for (const auto& [n, v] : state.tensors)
        if (n.rfind("__best.", 0) == 0) best[n.substr(7)] = v;
      return best;
    }());
    report.best_epoch = state.tensors.at("__best_epoch").item<int64_t>();
    report.best_score = state.tensors.at("__best_score").item<double>();
    std::map<std::string, double> alpha;
    for (const auto& m : modalities) alpha[m] = 1.0;
    for (const auto& m : modalities) {
      std::vector<std::pair<double, double>> tried;  // (alpha, score)
      std::vector<std::vector<at::Tensor>> tried_outcomes;
      double top = -1;
      // The text router also answers to L_dec: it is shrunk only as far as the held-out texts keep what L_dec
      // asks of them (held-out L_dec within slack of the trained router's).
      const bool dec = m == "text" && dec_check;
      const double slack = o.router_decoupling_slack;
      if (dec && held_out_dec(1.0) > dec_reference + slack)  // the best epoch's text router is not decoupled yet
        restore_module(*routers["text"], binding::router_prefix("text"), std::map<std::string, at::Tensor>(last_text.begin(), last_text.end()));
      for (double a : {1.0, 0.5, 0.25, 0.0}) {
        if (dec && a < 1.0 && held_out_dec(a) > dec_reference + slack) continue;
        alpha[m] = a;
        tried_outcomes.push_back(validation.outcomes_for(m, alpha, router_logits, 1.0));
        tried.emplace_back(a, outcomes_score(tried_outcomes.back()));
        top = std::max(top, tried.back().second);
      }
      size_t best = 0;
      for (size_t i = 0; i < tried.size(); ++i)
        if (tried[i].second == top) best = i;
      for (size_t i = 0; i < tried.size(); ++i) {  // the smallest alpha within the tolerance of the best
        const double noise = o.router_noise_z * outcomes_difference_se(tried_outcomes[best], tried_outcomes[i]);
        if (tried[i].second >= top - std::max(o.router_min_gain, noise)) alpha[m] = tried[i].first;
      }
    }
    shrink_routers(alpha);
    report.alpha = alpha;
    report.final_score = validation.score({}, router_logits, 1.0);
    if (o.progress) {
      std::string line = "router validation: uniform " + std::to_string(report.uniform_score) + ", best epoch " +
                         std::to_string(report.best_epoch) + " " + std::to_string(report.best_score) + ", kept";
      for (const auto& [m, a] : alpha) line += " " + m + " x" + std::to_string(a).substr(0, 4);
      o.progress({line, 1.0, report.final_score, 0});
    }
  }
  // Validation asked for but impossible (too few tuples to hold any out): an unvalidated router has not earned its
  // place, so by default it is not shipped (router_unvalidated "uniform"); "trained" keeps it as trained.
  if (o.router_validation > 0 && !validation.active() && o.router_unvalidated == "uniform" && !routers.empty()) {
    torch::NoGradGuard no_grad;
    for (const auto& m : modalities) report.alpha[m] = 0.0;
    shrink_routers(report.alpha);
    if (o.progress)
      o.progress({"router validation: too few tuples to hold out (" + std::to_string(T) + "): uniform routing", 1.0, 0, 0});
  }
  for (auto it = state.tensors.begin(); it != state.tensors.end();)  // not part of the result
    it = it->first.rfind("__best", 0) == 0 ? state.tensors.erase(it) : std::next(it);
  if (o.router_report) *o.router_report = report;
  store_routers();  // also covers --epochs-router 0 and a resumed, already finished run

  // Official order: projs by index, ib_projs, routers A, V, P, T.
  NamedTensors out;
  auto take = [&](const std::string& prefix) {
    for (const auto& [n, t] : state.tensors)
      if (n.rfind(prefix, 0) == 0) out.emplace_back(n, t);
  };
  for (int64_t i = 0; i < static_cast<int64_t>(config.projected_experts().size()) * K; ++i) take("projs." + std::to_string(i) + ".");
  for (int64_t k = 0; k < K; ++k) take("ib_projs." + std::to_string(k) + ".");
  for (const auto& m : binding::all_modalities()) take(binding::router_prefix(m));
  return out;
}

binding::OmniBindModel load_trained_model(const NamedTensors& state, const binding::BindingConfig& config) {
  tensor_io::StateDict sd("trained in process");
  for (const auto& [name, t] : state) sd.add(name, tensor_io::from_tensor(t.contiguous()));
  return binding::OmniBindModel::load(sd, config, binding::Precision::FP32);
}

void write_binding_checkpoint(const fs::path& path, const NamedTensors& state, const BindingConfig& config) {
  tensor_io::write_checkpoint(path.string(), state, {{"binding_config", binding::binding_config_to_json(config)},
                                                      {"format", "omnibind-heads"}});
}

}  // namespace omnibind::training
