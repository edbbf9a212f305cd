// Pseudo item tuples {point, audio, image, text} mined from unpaired pools by retrieval
// (docs/reference/binding_training.md "Tuples"). Every item of every pool is an anchor; each other
// modality's member is retrieved with the most specialised expert covering both modalities, or
// through a chain (anchor -> shared modality -> target) when no expert covers the pair. Tuples hold
// item indices, so every expert can embed every member.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"
#include "omnibind/distributed/distributed_context.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::training {

// Modality slots of a tuple, in the reference's unified-space order (points first, as in its data).
inline const std::vector<std::string>& tuple_modalities() {
  static const std::vector<std::string> m{"point", "audio", "image", "text"};
  return m;
}
int tuple_slot(const std::string& modality);  // InputError for an unknown name

struct TupleSet {
  at::Tensor index;   // int64 [T, 4, k]: pool rows per modality slot; -1 = absent
  at::Tensor weight;  // float [T, 4, k]: 1 for retrieved tuples (k = 1); softmax weights when aggregated
  at::Tensor score;   // float [T, 4]: similarity of the hop that reached each member (1 for the anchor)
  at::Tensor anchor;  // int64 [T]: the anchor's modality slot
  int64_t size() const { return index.defined() ? index.size(0) : 0; }
};

struct MiningOptions {
  std::string index = "Flat";      // "Flat" = exact streamed inner product; else a FAISS factory string (IVF256,Flat; HNSW32)
  int topk = 1;                    // members per slot (k); > 1 only with aggregate
  bool aggregate = false;          // FreeBind/C-MCR style: softmax(sim / temperature) over the top-k
  float temperature = 0.05f;
  int64_t block_rows = 8192;       // streaming block (queries and database)
  int64_t max_anchors_per_modality = -1;  // subsample anchors (seeded) for very large pools
  int64_t recall_sample = 256;     // queries used to measure an approximate index's recall against exact
  uint64_t seed = 0;
  // Several ranks (docs/SCALING.md): anchor blocks of block_rows (the same blocks as one process) are dealt
  // round-robin over the ranks, each rank searches its own, and every rank ends with all of them: the
  // result is the single-process one, byte for byte. Null or world size 1 = everything here.
  distributed::DistributedContext* dist = nullptr;
};

using MiningProgress = std::function<void(const std::string& stage, double fraction)>;

// One hop of the retrieval plan: query modality -> target modality through the experts covering
// both. Several experts are ensembled (mean of their cosine similarities): when two equally
// specialised experts are each good on different classes, mining with either one alone would bias
// the tuples (and the routers trained on them) toward that expert.
struct MiningHop {
  std::string from, to;
  std::vector<std::string> experts;
  std::string label() const;  // "AT_A+AT_B"
};
// The plan for an anchor modality: hops in execution order (chained hops start from a member
// retrieved earlier). InputError when some present modality cannot be reached at all.
std::vector<MiningHop> mining_plan(const EmbeddingPool& pool, const std::string& anchor);

// Mines tuples; `stats` receives the similarity histograms, per-class purity (labels present),
// the plan, and recall for approximate indexes.
TupleSet mine_tuples(const EmbeddingPool& pool, const MiningOptions& options, nlohmann::json* stats = nullptr,
                     const MiningProgress& progress = {});

void save_tuples(const std::filesystem::path& path, const TupleSet& tuples, const nlohmann::json& stats);
TupleSet load_tuples(const std::filesystem::path& path);  // InputError naming the file on malformed content

// Expert E's embeddings of slot `modality_slot`'s members of tuples `tuple_rows` (int64 [B]):
// normalise(sum_j weight * row) per tuple; zero rows where the member is absent. float32 [B, d].
at::Tensor gather_members(const EmbeddingPool& pool, const TupleSet& tuples, int modality_slot, const std::string& expert,
                          const at::Tensor& tuple_rows);

}  // namespace omnibind::training
