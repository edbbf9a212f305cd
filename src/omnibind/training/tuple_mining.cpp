#include "omnibind/training/tuple_mining.h"

#include <ATen/ATen.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <random>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::training {
namespace fs = std::filesystem;
using nlohmann::json;

int tuple_slot(const std::string& modality) {
  const auto& m = tuple_modalities();
  auto it = std::find(m.begin(), m.end(), modality);
  if (it == m.end()) throw InputError("unknown modality '" + modality + "' (point, audio, image, text)");
  return static_cast<int>(it - m.begin());
}

namespace {

// The experts covering both modalities that are the most specialised (fewest modalities), in
// manifest order; all of them are ensembled for the hop.
std::vector<std::string> hop_experts(const EmbeddingPool& pool, const std::string& a, const std::string& b) {
  size_t fewest = SIZE_MAX;
  for (const auto& e : pool.manifest().experts)
    if (e.covers(a) && e.covers(b) && pool.has(a, e.name) && pool.has(b, e.name)) fewest = std::min(fewest, e.modalities.size());
  std::vector<std::string> out;
  for (const auto& e : pool.manifest().experts)
    if (e.covers(a) && e.covers(b) && pool.has(a, e.name) && pool.has(b, e.name) && e.modalities.size() == fewest)
      out.push_back(e.name);
  return out;
}

// Rows of several experts side by side, each scaled by 1/sqrt(n): inner products of such rows are
// the mean of the experts' cosine similarities.
at::Tensor ensemble_rows(const EmbeddingPool& pool, const std::string& modality, const std::vector<std::string>& experts,
                         int64_t begin, int64_t end) {
  std::vector<at::Tensor> parts;
  for (const auto& e : experts) parts.push_back(pool.embeddings(modality, e, begin, end));
  at::Tensor out = parts.size() == 1 ? parts[0] : at::cat(parts, 1);
  return parts.size() == 1 ? out : out / std::sqrt(static_cast<double>(experts.size()));
}

// Top-k inner-product search of `queries` [Q, d] against rows of (modality, expert), exactly and
// streamed: the database is read block by block and a running top-k kept.
void exact_topk(const EmbeddingPool& pool, const std::string& modality, const std::vector<std::string>& experts,
                const at::Tensor& queries, int k, int64_t block_rows, at::Tensor& best_scores, at::Tensor& best_index) {
  const int64_t n = pool.rows(modality);
  best_scores = at::full({queries.size(0), k}, -std::numeric_limits<float>::infinity());
  best_index = at::full({queries.size(0), k}, -1, at::kLong);
  for (int64_t begin = 0; begin < n; begin += block_rows) {
    const int64_t end = std::min(n, begin + block_rows);
    at::Tensor block = ensemble_rows(pool, modality, experts, begin, end);
    at::Tensor sims = at::mm(queries, block.t());  // [Q, b]
    const int kk = static_cast<int>(std::min<int64_t>(k, end - begin));
    auto [s, i] = at::topk(sims, kk, 1);
    at::Tensor all_s = at::cat({best_scores, s}, 1), all_i = at::cat({best_index, i + begin}, 1);
    auto [ts, ti] = at::topk(all_s, k, 1);
    best_scores = ts;
    best_index = all_i.gather(1, ti);
  }
}

// An approximate FAISS index over one (modality, experts) table, built by streaming blocks.
struct ApproxIndex {
  std::string modality;
  std::vector<std::string> experts;
  std::unique_ptr<faiss::Index> index;
};

ApproxIndex build_faiss(const EmbeddingPool& pool, const std::string& modality, const std::vector<std::string>& experts,
                        const MiningOptions& options) {
  const int64_t n = pool.rows(modality);
  int64_t d = 0;
  for (const auto& e : experts) d += pool.dim(e);
  ApproxIndex out{modality, experts, nullptr};
  try {
    out.index.reset(faiss::index_factory(static_cast<int>(d), options.index.c_str(), faiss::METRIC_INNER_PRODUCT));
  } catch (const std::exception& e) {
    throw InputError("--index '" + options.index + "': not a FAISS factory string this build accepts (" + e.what() + ")");
  }
  if (!out.index->is_trained) {
    const int64_t train_rows = std::min<int64_t>(n, 50000);
    at::Tensor sample = ensemble_rows(pool, modality, experts, 0, train_rows);  // pools are unordered, so a prefix is a sample
    out.index->train(train_rows, sample.data_ptr<float>());
  }
  for (int64_t begin = 0; begin < n; begin += options.block_rows) {
    at::Tensor block = ensemble_rows(pool, modality, experts, begin, std::min(n, begin + options.block_rows));
    out.index->add(block.size(0), block.data_ptr<float>());
  }
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(out.index.get())) ivf->nprobe = std::max<size_t>(8, ivf->nlist / 16);
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(out.index.get())) hnsw->hnsw.efSearch = 64;
  return out;
}

void faiss_topk(const ApproxIndex& index, const at::Tensor& queries, int k, at::Tensor& scores, at::Tensor& ids) {
  scores = at::empty({queries.size(0), k}, at::kFloat);
  ids = at::empty({queries.size(0), k}, at::kLong);
  at::Tensor q = queries.contiguous();
  index.index->search(q.size(0), q.data_ptr<float>(), k, scores.data_ptr<float>(), ids.data_ptr<int64_t>());
}

}  // namespace

std::string MiningHop::label() const {
  std::string out;
  for (const auto& e : experts) out += (out.empty() ? "" : "+") + e;
  return out;
}

std::vector<MiningHop> mining_plan(const EmbeddingPool& pool, const std::string& anchor) {
  std::vector<MiningHop> plan;
  std::vector<std::string> reached{anchor}, pending;
  for (const auto& m : tuple_modalities())
    if (m != anchor && pool.has_modality(m)) pending.push_back(m);
  // Direct hops first, then chains from any reached modality, in the order text, image, audio, point
  // (text and image are where the most experts meet).
  bool progress = true;
  while (!pending.empty() && progress) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      std::vector<std::string> experts;
      std::string from;
      for (const auto& via : {anchor, std::string("text"), std::string("image"), std::string("audio"), std::string("point")}) {
        if (std::find(reached.begin(), reached.end(), via) == reached.end()) continue;
        experts = hop_experts(pool, via, *it);
        if (!experts.empty()) { from = via; break; }
      }
      if (experts.empty()) { ++it; continue; }
      plan.push_back({from, *it, experts});
      reached.push_back(*it);
      it = pending.erase(it);
      progress = true;
    }
  }
  if (!pending.empty())
    throw InputError(pool.dir().string() + ": no expert or chain of experts links " + anchor + " to " + pending.front() +
                     " (add an expert covering " + pending.front() + " and a modality it can reach)");
  return plan;
}

TupleSet mine_tuples(const EmbeddingPool& pool, const MiningOptions& options, json* stats, const MiningProgress& progress) {
  if (options.topk < 1) throw InputError("--topk must be at least 1");
  if (options.topk > 1 && !options.aggregate) throw InputError("--topk above 1 needs --aggregate (a retrieved tuple has one member per modality)");
  if (options.temperature <= 0) throw InputError("--temperature must be positive");
  const int k = options.topk;
  std::vector<TupleSet> parts;
  json plan_json = json::object(), hist = json::object(), purity = json::object(), recall = json::object();
  std::map<std::string, ApproxIndex> approx;  // "<modality>/<expert>" -> index
  const bool exact = options.index == "Flat" || options.index == "flat";
  const auto present = pool.modalities();
  int64_t total_anchors = 0, done_anchors = 0;
  for (const auto& m : present)
    total_anchors += options.max_anchors_per_modality > 0 ? std::min(pool.rows(m), options.max_anchors_per_modality) : pool.rows(m);
  // Several ranks: anchor block b (counted over every anchor modality) is searched by rank b % world.
  const int world = options.dist ? options.dist->world_size() : 1, rank = options.dist ? options.dist->rank() : 0;
  int64_t block_counter = 0, row_offset = 0;
  std::vector<std::vector<at::Tensor>> rows_of_rank(static_cast<size_t>(world));  // global tuple rows each rank searched

  for (const auto& anchor : present) {
    const auto plan = mining_plan(pool, anchor);
    json pj = json::array();
    for (const auto& h : plan) pj.push_back(h.from + " -> " + h.to + " by " + h.label());
    plan_json[anchor] = pj;
    // Anchor rows (all, or a seeded subsample).
    at::Tensor anchors = at::arange(pool.rows(anchor), at::kLong);
    if (options.max_anchors_per_modality > 0 && pool.rows(anchor) > options.max_anchors_per_modality) {
      std::vector<int64_t> rows(static_cast<size_t>(pool.rows(anchor)));
      std::iota(rows.begin(), rows.end(), 0);
      std::mt19937_64 rng(options.seed + static_cast<uint64_t>(tuple_slot(anchor)));
      std::shuffle(rows.begin(), rows.end(), rng);
      rows.resize(static_cast<size_t>(options.max_anchors_per_modality));
      std::sort(rows.begin(), rows.end());
      anchors = at::tensor(rows, at::kLong);
    }
    const int64_t T = anchors.size(0);
    TupleSet ts;
    ts.index = at::full({T, 4, k}, -1, at::kLong);
    ts.weight = at::zeros({T, 4, k}, at::kFloat);
    ts.score = at::zeros({T, 4}, at::kFloat);
    ts.anchor = at::full({T}, tuple_slot(anchor), at::kLong);
    const int a = tuple_slot(anchor);
    ts.index.select(1, a).select(1, 0).copy_(anchors);
    ts.weight.select(1, a).select(1, 0).fill_(1.0f);
    ts.score.select(1, a).fill_(1.0f);
    for (int64_t begin = 0; begin < T; begin += options.block_rows) {
      const int64_t end = std::min(T, begin + options.block_rows);
      const int owner = static_cast<int>(block_counter++ % world);
      rows_of_rank[static_cast<size_t>(owner)].push_back(at::arange(row_offset + begin, row_offset + end, at::kLong));
      if (owner != rank) continue;
      for (const auto& hop : plan) {
        const int from = tuple_slot(hop.from), to = tuple_slot(hop.to);
        // The query: the (aggregated) member of `from` in the hop's expert space.
        at::Tensor rows = at::arange(begin, end, at::kLong);
        std::vector<at::Tensor> qs;
        for (const auto& e : hop.experts) qs.push_back(gather_members(pool, ts, from, e, rows));
        at::Tensor q = qs.size() == 1 ? qs[0] : at::cat(qs, 1) / std::sqrt(static_cast<double>(qs.size()));
        at::Tensor s, i;
        if (exact) {
          exact_topk(pool, hop.to, hop.experts, q, k, options.block_rows, s, i);
        } else {
          const std::string key = hop.to + "/" + hop.label();
          if (!approx.count(key)) approx.emplace(key, build_faiss(pool, hop.to, hop.experts, options));
          faiss_topk(approx.at(key), q, k, s, i);
          i = i.clamp_min(-1);
        }
        at::Tensor w = options.aggregate ? at::softmax(s / options.temperature, 1) : at::ones_like(s);
        ts.index.select(1, to).narrow(0, begin, end - begin).copy_(i);
        ts.weight.select(1, to).narrow(0, begin, end - begin).copy_(w);
        ts.score.select(1, to).narrow(0, begin, end - begin).copy_(s.select(1, 0));
      }
      done_anchors += (end - begin) * world;  // every rank is about as far
      if (progress) progress("mining " + anchor + " anchors", std::min(1.0, static_cast<double>(done_anchors) / std::max<int64_t>(1, total_anchors)));
    }
    parts.push_back(ts);
    row_offset += T;
  }

  TupleSet out;
  std::vector<at::Tensor> idx, w, sc, an;
  for (auto& p : parts) { idx.push_back(p.index); w.push_back(p.weight); sc.push_back(p.score); an.push_back(p.anchor); }
  out.index = at::cat(idx, 0);
  out.weight = at::cat(w, 0);
  out.score = at::cat(sc, 0);
  out.anchor = at::cat(an, 0);
  if (world > 1) {
    // Every rank's searched rows, then scattered into place on every rank (the anchors are known to all).
    std::vector<at::Tensor> all_rows;
    for (auto& r : rows_of_rank) all_rows.push_back(r.empty() ? at::empty({0}, at::kLong) : at::cat(r, 0));
    const at::Tensor mine = all_rows[static_cast<size_t>(rank)], order = at::cat(all_rows, 0);
    auto& dist = *options.dist;
    out.index.index_copy_(0, order, dist.all_gather_rows(out.index.index_select(0, mine), "gathering mined tuples"));
    out.weight.index_copy_(0, order, dist.all_gather_rows(out.weight.index_select(0, mine), "gathering mined tuples"));
    out.score.index_copy_(0, order, dist.all_gather_rows(out.score.index_select(0, mine), "gathering mined tuples"));
    // Approximate indexes: the statistics measure every hop's index, including those this rank never searched.
    if (!exact && stats)
      for (const auto& anchor : present)
        for (const auto& hop : mining_plan(pool, anchor)) {
          const std::string key = hop.to + "/" + hop.label();
          if (!approx.count(key)) approx.emplace(key, build_faiss(pool, hop.to, hop.experts, options));
        }
  }

  if (stats) {
    // Similarity histogram per target modality (20 bins on [-1, 1]) over hops that reached it.
    for (const auto& m : present) {
      const int slot = tuple_slot(m);
      at::Tensor reached = out.anchor.ne(slot);
      at::Tensor s = out.score.select(1, slot).masked_select(reached);
      if (s.numel() == 0) continue;
      at::Tensor h = at::histc(s, 20, -1, 1);
      std::vector<float> counts(h.data_ptr<float>(), h.data_ptr<float>() + 20);
      hist[m] = {{"bins", 20}, {"range", {-1, 1}}, {"counts", counts}, {"mean", s.mean().item<double>()}};
    }
    // Purity: share of retrieved members whose label equals the anchor's (where both are known).
    std::map<std::string, at::Tensor> labels;
    for (const auto& m : present)
      if (auto l = pool.column(m, "label")) labels[m] = *l;
    for (const auto& [am, al] : labels)
      for (const auto& [tm, tl] : labels) {
        if (am == tm) continue;
        at::Tensor sel = out.anchor.eq(tuple_slot(am));
        at::Tensor arow = out.index.select(1, tuple_slot(am)).select(1, 0).masked_select(sel);
        at::Tensor trow = out.index.select(1, tuple_slot(tm)).select(1, 0).masked_select(sel);
        at::Tensor ok = trow.ge(0);
        if (!ok.any().item<bool>()) continue;
        at::Tensor la = al.index({arow.masked_select(ok)}), lt = tl.index({trow.masked_select(ok)});
        at::Tensor known = la.ge(0).logical_and(lt.ge(0));
        if (!known.any().item<bool>()) continue;
        purity[am + "->" + tm] = la.masked_select(known).eq(lt.masked_select(known)).to(at::kDouble).mean().item<double>();
      }
    // Recall@k of approximate indexes against exact search on a sample of queries.
    for (auto& [key, index] : approx) {
      const std::string& m = index.modality;
      const std::vector<std::string>& e = index.experts;
      const int64_t nq = std::min<int64_t>(options.recall_sample, pool.rows(m));
      at::Tensor q = ensemble_rows(pool, m, e, 0, nq);  // the pool's own rows as queries
      at::Tensor es, ei, as, ai;
      const int kk = 10;
      exact_topk(pool, m, e, q, kk, options.block_rows, es, ei);
      faiss_topk(index, q, kk, as, ai);
      int64_t hit = 0;
      auto a_ptr = ai.accessor<int64_t, 2>();
      auto e_ptr = ei.accessor<int64_t, 2>();
      for (int64_t r = 0; r < nq; ++r)
        for (int x = 0; x < kk; ++x)
          for (int y = 0; y < kk; ++y) hit += a_ptr[r][x] == e_ptr[r][y];
      recall[key] = static_cast<double>(hit) / static_cast<double>(nq * kk);
    }
    (*stats)["plan"] = plan_json;
    (*stats)["similarity_histogram"] = hist;
    (*stats)["purity"] = purity;
    (*stats)["index"] = options.index;
    if (!recall.empty()) (*stats)["recall_at_10"] = recall;
    (*stats)["tuples"] = out.size();
    (*stats)["aggregate"] = options.aggregate;
    (*stats)["topk"] = k;
  }
  return out;
}

at::Tensor gather_members(const EmbeddingPool& pool, const TupleSet& tuples, int modality_slot, const std::string& expert,
                          const at::Tensor& tuple_rows) {
  const std::string& modality = tuple_modalities().at(static_cast<size_t>(modality_slot));
  at::Tensor idx = tuples.index.index_select(0, tuple_rows).select(1, modality_slot);   // [B, k]
  at::Tensor w = tuples.weight.index_select(0, tuple_rows).select(1, modality_slot);    // [B, k]
  const int64_t B = idx.size(0), k = idx.size(1), d = pool.dim(expert);
  at::Tensor present = idx.ge(0);
  at::Tensor rows = pool.gather(modality, expert, idx.clamp_min(0).reshape({-1})).reshape({B, k, d});
  at::Tensor sum = (rows * (w * present.to(at::kFloat)).unsqueeze(2)).sum(1);
  return sum / sum.norm(2, -1, true).clamp_min(1e-12);
}

void save_tuples(const fs::path& path, const TupleSet& t, const json& stats) {
  tensor_io::write_tensors(path.string(), {{"index", t.index}, {"weight", t.weight}, {"score", t.score}, {"anchor", t.anchor}},
                           {{"format", "omnibind-tuples"}, {"modalities", "point,audio,image,text"}, {"stats", stats.dump()}});
}

TupleSet load_tuples(const fs::path& path) {
  const std::string p = path.string();
  if (!fs::exists(path)) throw InputError(p + ": no such tuples file");
  auto file = tensor_io::read_safetensors(p);
  if (file.metadata["format"] != "omnibind-tuples") throw InputError(p + ": not a tuples file (written by `omnibind pairs`)");
  TupleSet t;
  for (const char* name : {"index", "weight", "score", "anchor"})
    if (!file.tensors.contains(name)) throw InputError(p + ": missing tensor '" + std::string(name) + "'");
  t.index = tensor_io::to_tensor(file.tensors.at("index")).clone();
  t.weight = tensor_io::to_tensor(file.tensors.at("weight")).clone();
  t.score = tensor_io::to_tensor(file.tensors.at("score")).clone();
  t.anchor = tensor_io::to_tensor(file.tensors.at("anchor")).clone();
  const int64_t T = t.index.size(0);
  if (t.index.dim() != 3 || t.index.size(1) != 4 || t.index.scalar_type() != at::kLong || t.weight.sizes() != t.index.sizes() ||
      t.weight.scalar_type() != at::kFloat || t.score.dim() != 2 || t.score.size(0) != T || t.anchor.dim() != 1 ||
      t.anchor.size(0) != T || t.anchor.scalar_type() != at::kLong)
    throw InputError(p + ": tensors have inconsistent shapes or types (index int64 [T,4,k], weight float [T,4,k], score [T,4], anchor [T])");
  return t;
}

}  // namespace omnibind::training
