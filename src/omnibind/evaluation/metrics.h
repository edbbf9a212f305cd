// Evaluation metrics on embeddings: zero-shot classification from class prompt ensembles (top-1/top-5,
// mAP for multi-label) and cross-modal retrieval recall (R@1/R@5/R@10, several true matches allowed).
// Scores are inner products; callers pass unit rows (cosine). Ties count against the truth: an item is
// ranked behind every other candidate with an equal score, so constant embeddings score chance or below,
// never above. Similarities are computed in query blocks, so memory stays O(block x gallery).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace omnibind::evaluation {

// Prompt ensembles: mean of each class's prompt rows, renormalised. prompts [P, D], prompt_class int64 [P]
// (values in [0, num_classes)). Classes without prompts get a zero row (they never win a tie).
at::Tensor class_embeddings(const at::Tensor& prompts, const at::Tensor& prompt_class, int64_t num_classes);

struct ZeroShotResult {
  double top1 = 0, top5 = 0;  // fractions in [0, 1]
  int64_t queries = 0;        // rows with a label >= 0
};
// queries [N, D], labels int64 [N] (-1 = unknown, skipped), classes [C, D].
ZeroShotResult zero_shot_accuracy(const at::Tensor& queries, const at::Tensor& labels, const at::Tensor& classes);

// Multi-label: mean over classes with at least one positive of the average precision of ranking all
// N items by their score for that class. scores [N, C], targets [N, C] (non-zero = positive).
double mean_average_precision(const at::Tensor& scores, const at::Tensor& targets);

struct RecallResult {
  double r1 = 0, r5 = 0, r10 = 0;  // fractions in [0, 1]
  int64_t queries = 0;             // queries with at least one true match in the gallery
};
// Query rows with pair id >= 0 search the gallery; a hit at K when a gallery row with the same pair id
// ranks within the first K. queries [Nq, D] + query_pair int64 [Nq], gallery [Ng, D] + gallery_pair [Ng].
RecallResult retrieval_recall(const at::Tensor& queries, const at::Tensor& query_pair, const at::Tensor& gallery,
                              const at::Tensor& gallery_pair);

struct PairRecall {
  RecallResult a_to_b, b_to_a;
};
PairRecall retrieval_both_ways(const at::Tensor& a, const at::Tensor& a_pair, const at::Tensor& b, const at::Tensor& b_pair);

}  // namespace omnibind::evaluation
