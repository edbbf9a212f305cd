// Ablations of the binding method (issue 3 item 5), each a full training run through the training layer's
// in-process entry points, evaluated on the same evaluation set with learned routing (and the full model once more with uniform routing):
//   full            K heads per space, the options' router objective (named by its loss terms), retrieved tuples
//   uniform         the full model's heads with uniform routing (what the routers buy)
//   1 head          heads_per_space = 1
//   no L_dec        no language representation decoupling (TrainOptions::decoupling = false)
//   other objective the other router objective ("paper" for the default "denoise", and the reverse)
//   aggregated      softmax-aggregated pseudo embeddings over the top-k (FreeBind/C-MCR) instead of retrieved items
//   plain L_dec     L_dec as an unclipped cross-entropy (TrainOptions::decoupling_margin = 1; only when the
//                   options use a margin below 1)
// One table (eval_table.h); the composite metric and per-task numbers say what each part buys.
#pragma once
#include <functional>
#include <string>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/eval_table.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"

namespace omnibind::evaluation {

// The router loss terms the options switch on, e.g. "L_noise + L_align (routers < 3 slots) + L_dec" (row names).
std::string router_loss_label(const training::TrainOptions& options);

struct AblationOptions {
  training::TrainOptions train;      // shared by every variant (seed, epochs, batch, lr)
  training::MiningOptions mining;    // the retrieved-tuple mining of the full method
  int aggregate_topk = 8;            // k of the aggregated variant
  float aggregate_temperature = 0.05f;
  std::function<void(const std::string&)> progress;  // one line per variant started
};

// Trains a binding (mining tuples first) and returns it loaded as a model.
binding::OmniBindModel train_model(const training::EmbeddingPool& pool, const training::TupleSet& tuples,
                                   const binding::BindingConfig& config, const training::TrainOptions& options);

EvalTable run_ablations(const training::EmbeddingPool& train_pool, const EvalSet& eval, const binding::BindingConfig& config,
                        const AblationOptions& options = {});

}  // namespace omnibind::evaluation
