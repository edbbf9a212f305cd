#include "omnibind/evaluation/metrics.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "omnibind/common/error.h"

namespace omnibind::evaluation {
namespace {

constexpr int64_t kBlock = 1024;

void require_matrix(const at::Tensor& t, const char* what) {
  require(t.defined() && t.dim() == 2, std::string(what) + " must be a [N, D] matrix");
}
void require_ids(const at::Tensor& t, int64_t n, const char* what) {
  require(t.defined() && t.dim() == 1 && t.size(0) == n,
          std::string(what) + " must be a vector with one entry per row (" + std::to_string(n) + ")");
}
}  // namespace

at::Tensor class_embeddings(const at::Tensor& prompts, const at::Tensor& prompt_class, int64_t num_classes) {
  require_matrix(prompts, "prompt embeddings");
  require_ids(prompt_class, prompts.size(0), "prompt_class");
  require(num_classes > 0, "class prompts: no classes");
  at::Tensor cls = prompt_class.to(at::kLong);
  require(prompts.size(0) == 0 || (cls.min().item<int64_t>() >= 0 && cls.max().item<int64_t>() < num_classes),
          "prompt_class values must lie in [0, " + std::to_string(num_classes) + ")");
  at::Tensor p = prompts.to(at::kFloat);
  at::Tensor sum = at::zeros({num_classes, p.size(1)}, p.options());
  sum.index_add_(0, cls, p);
  return sum / sum.norm(2, -1, true).clamp_min(1e-12);
}

ZeroShotResult zero_shot_accuracy(const at::Tensor& queries, const at::Tensor& labels, const at::Tensor& classes) {
  require_matrix(queries, "zero-shot queries");
  require_matrix(classes, "class embeddings");
  require_ids(labels, queries.size(0), "labels");
  require(queries.size(1) == classes.size(1), "zero-shot: query width " + std::to_string(queries.size(1)) +
                                                  " differs from class width " + std::to_string(classes.size(1)));
  at::Tensor lab = labels.to(at::kLong);
  at::Tensor keep = at::nonzero(lab.ge(0)).squeeze(1);
  ZeroShotResult r;
  r.queries = keep.size(0);
  if (r.queries == 0) return r;
  require(lab.max().item<int64_t>() < classes.size(0), "zero-shot: a label exceeds the class count");
  at::Tensor q = queries.to(at::kFloat).index_select(0, keep);
  at::Tensor y = lab.index_select(0, keep);
  at::Tensor c = classes.to(at::kFloat);
  int64_t hit1 = 0, hit5 = 0;
  for (int64_t b = 0; b < r.queries; b += kBlock) {
    const int64_t e = std::min(r.queries, b + kBlock);
    at::Tensor s = at::matmul(q.slice(0, b, e), c.t());                // [n, C]
    at::Tensor yb = y.slice(0, b, e);
    at::Tensor truth = s.gather(1, yb.unsqueeze(1));                   // [n, 1]
    at::Tensor rank = s.ge(truth).sum(1) - 1;                          // others scoring >= the truth
    hit1 += rank.lt(1).sum().item<int64_t>();
    hit5 += rank.lt(5).sum().item<int64_t>();
  }
  r.top1 = double(hit1) / double(r.queries);
  r.top5 = double(hit5) / double(r.queries);
  return r;
}

double mean_average_precision(const at::Tensor& scores, const at::Tensor& targets) {
  require_matrix(scores, "mAP scores");
  require(targets.defined() && targets.sizes() == scores.sizes(), "mAP: targets must have the scores' shape");
  at::Tensor s = scores.to(at::kDouble).t().contiguous();    // [C, N]
  at::Tensor t = targets.ne(0).t().contiguous();               // [C, N] bool
  const int64_t C = s.size(0), N = s.size(1);
  double total = 0;
  int64_t counted = 0;
  std::vector<int64_t> order(N);
  for (int64_t c = 0; c < C; ++c) {
    const double* sc = s[c].data_ptr<double>();
    const bool* tc = t[c].data_ptr<bool>();
    int64_t positives = 0;
    for (int64_t i = 0; i < N; ++i) positives += tc[i];
    if (positives == 0) continue;
    std::iota(order.begin(), order.end(), 0);
    // Descending score; among equal scores negatives first (ties count against the truth).
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      if (sc[a] != sc[b]) return sc[a] > sc[b];
      if (tc[a] != tc[b]) return !tc[a];
      return a < b;
    });
    double ap = 0;
    int64_t seen = 0;
    for (int64_t k = 0; k < N; ++k)
      if (tc[order[k]]) ap += double(++seen) / double(k + 1);
    total += ap / double(positives);
    ++counted;
  }
  require(counted > 0, "mAP: no class has a positive item");
  return total / double(counted);
}

RecallResult retrieval_recall(const at::Tensor& queries, const at::Tensor& query_pair, const at::Tensor& gallery,
                              const at::Tensor& gallery_pair) {
  require_matrix(queries, "retrieval queries");
  require_matrix(gallery, "retrieval gallery");
  require_ids(query_pair, queries.size(0), "query pair ids");
  require_ids(gallery_pair, gallery.size(0), "gallery pair ids");
  require(queries.size(1) == gallery.size(1), "retrieval: query width " + std::to_string(queries.size(1)) +
                                                  " differs from gallery width " + std::to_string(gallery.size(1)));
  at::Tensor gp = gallery_pair.to(at::kLong);
  at::Tensor qp = query_pair.to(at::kLong);
  // Queries with a true match in the gallery.
  at::Tensor known = at::isin(qp, gp.masked_select(gp.ge(0))).logical_and(qp.ge(0));
  at::Tensor keep = at::nonzero(known).squeeze(1);
  RecallResult r;
  r.queries = keep.size(0);
  if (r.queries == 0) return r;
  at::Tensor q = queries.to(at::kFloat).index_select(0, keep);
  at::Tensor ids = qp.index_select(0, keep);
  at::Tensor g = gallery.to(at::kFloat);
  int64_t h1 = 0, h5 = 0, h10 = 0;
  for (int64_t b = 0; b < r.queries; b += kBlock) {
    const int64_t e = std::min(r.queries, b + kBlock);
    at::Tensor s = at::matmul(q.slice(0, b, e), g.t());                // [n, Ng]
    at::Tensor match = ids.slice(0, b, e).unsqueeze(1).eq(gp.unsqueeze(0));  // [n, Ng]
    at::Tensor best = s.masked_fill(match.logical_not(), -INFINITY).amax(1, true);  // best true score
    at::Tensor rank = s.ge(best).logical_and(match.logical_not()).sum(1);           // false items at or above it
    h1 += rank.lt(1).sum().item<int64_t>();
    h5 += rank.lt(5).sum().item<int64_t>();
    h10 += rank.lt(10).sum().item<int64_t>();
  }
  r.r1 = double(h1) / double(r.queries);
  r.r5 = double(h5) / double(r.queries);
  r.r10 = double(h10) / double(r.queries);
  return r;
}

PairRecall retrieval_both_ways(const at::Tensor& a, const at::Tensor& a_pair, const at::Tensor& b, const at::Tensor& b_pair) {
  return {retrieval_recall(a, a_pair, b, b_pair), retrieval_recall(b, b_pair, a, a_pair)};
}

}  // namespace omnibind::evaluation
