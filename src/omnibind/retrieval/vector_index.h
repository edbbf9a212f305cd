// A persistent index directory: `catalog.sqlite` (items, exact vectors, meta) + `index.<gen>.faiss`
// (the search structure, a FAISS IndexIDMap2 over any factory type, inner product).
//
// Crash safety: a write (add/remove) writes the FAISS file of generation g+1 under a new name and
// then commits the SQLite transaction that sets meta.generation = g+1; only then is generation g's
// file deleted. A SIGKILL anywhere leaves the catalog at g or g+1, and the file of that generation
// exists. Opening for writing deletes files of other generations (leftovers of a crash); a missing
// or inconsistent FAISS file is rebuilt from the catalog's exact vectors.
//
// Threads: searches run concurrently (shared lock); writes take the lock exclusively. Processes:
// one writer per directory (an flock on DIR/lock), any number of readers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "omnibind/retrieval/catalog.h"

namespace faiss {
struct Index;
}

namespace omnibind::retrieval {

struct CreateOptions {
  int64_t dim = 0;
  std::string type = "Flat";  // a FAISS factory string: Flat, IVF256,Flat, IVF256,PQ32, HNSW32, SQfp16, SQ8, ...
  int nprobe = 16;            // IVF: lists visited per query
  int ef_search = 64;         // HNSW: candidate list size
};

struct Filter {
  std::vector<std::string> modalities;                      // any of these; empty = all
  std::vector<std::pair<std::string, std::string>> where;   // metadata[key] == value (or key "label")
  std::vector<int64_t> exclude;                             // ids never returned (e.g. the query item)
  bool empty() const { return modalities.empty() && where.empty() && exclude.empty(); }
};

// Does an item pass the filter? (metadata values that are not strings compare by their JSON text)
bool filter_accepts(const Filter& f, int64_t id, const std::string& modality, const std::vector<std::string>& labels,
                    const nlohmann::json& metadata);

struct Hit {
  int64_t id = -1;
  float score = 0;
};

struct IndexInfo {
  std::string dir, type;
  int64_t dim = 0, count = 0, generation = 0;
  int nprobe = 0, ef_search = 0;
  std::unordered_map<std::string, int64_t> per_modality;
  std::optional<double> recall_at_10;  // measured against exact search at the last write
  bool exact = false;                  // the type is exhaustive (recall 1 by construction)
  int64_t index_bytes = 0;             // size of the FAISS file
};

class VectorIndex {
 public:
  enum class Mode { ReadOnly, ReadWrite };

  // Makes DIR (must not hold an index already) with an empty index of the given type.
  static void create(const std::string& dir, const CreateOptions& options);
  static std::unique_ptr<VectorIndex> open(const std::string& dir, Mode mode);
  ~VectorIndex();

  int64_t dim() const { return dim_; }
  int64_t size() const;
  const std::string& dir() const { return dir_; }

  // Rows [n, dim] (L2-normalised here; zero rows are rejected). Item ids are assigned (never reused)
  // and returned. Atomic: on any error nothing is committed. `measure_recall`: re-measure recall@10
  // against exact search afterwards (approximate types only).
  std::vector<int64_t> add(const std::vector<ItemRecord>& items, const float* rows, int64_t n,
                           bool measure_recall = true);
  size_t remove(const std::vector<int64_t>& ids);  // number removed; unknown ids are ignored

  // Trains an empty index of a type that needs it (IVF, PQ, ...) on a sample [n, dim] (normalised
  // here) and commits it as a new generation, so that later adds go in without training; the bulk path
  // for pools larger than memory (docs/SCALING.md "The index at scale"). InputError when the index is
  // not empty, or FAISS refuses the sample (too few rows for the type). A no-op for types that need no
  // training.
  void train(const float* rows, int64_t n);
  bool is_trained() const;

  // Streams rows into ONE catalog transaction and ONE new generation (all or nothing, like add()):
  // `next(items, rows)` fills up to one chunk (rows [items.size(), dim] f32, row-major) and returns false
  // when the stream is done. Memory: one chunk at a time plus the index structure (for IVF/PQ the codes,
  // not the vectors). An untrained index is trained on the first chunk. Returns {first id, count}.
  std::pair<int64_t, int64_t> add_stream(const std::function<bool(std::vector<ItemRecord>&, std::vector<float>&)>& next,
                                         bool measure_recall = true);

  // Top-k by inner product; `query` is [dim]. Filters are applied by over-fetching.
  std::vector<Hit> search(const float* query, int64_t k, const Filter& filter = {}, int nprobe = 0) const;
  // Several queries at once, no filter: [nq, dim] -> nq lists of k hits (for batched serving).
  std::vector<std::vector<Hit>> search_batch(const float* queries, int64_t nq, int64_t k) const;

  std::optional<ItemRecord> item(int64_t id) const;
  bool vector(int64_t id, std::vector<float>& out) const;  // the exact stored (normalised) vector
  IndexInfo info() const;
  // recall@k of the index against exact search, over up to nq stored vectors as queries (the exact
  // search streams the catalog in chunks: memory is one chunk, not the index's vectors).
  double measure_recall(int64_t nq = 200, int64_t k = 10) const;
  // Every item (optionally with vectors) in id order; used by classification.
  void for_each(const std::function<void(const ItemRecord&, const float*)>& fn, bool with_vectors) const;

 private:
  VectorIndex() = default;
  void load_or_rebuild(bool allow_cleanup);
  std::unique_ptr<faiss::Index> rebuild_from_catalog() const;
  std::unique_ptr<faiss::Index> new_empty_index() const;
  void write_generation(int64_t gen) const;  // writes index_ to index.<gen>.faiss (atomically)
  // A write of generation `gen` failed: the catalog transaction (when open) rolled back, its index file
  // removed, the in-memory index back to the last committed generation (read, else rebuilt).
  void abandon_generation(int64_t gen, bool in_txn);
  // Generation `gen` committed: the previous generation's file goes, `gen` becomes current.
  void adopt_generation(int64_t gen);
  std::string index_path(int64_t gen) const;
  bool matches(int64_t id, const Filter& f) const;
  void apply_search_params(faiss::Index* idx, int nprobe) const;

  struct Cached {
    std::string modality;
    std::vector<std::string> labels;
    nlohmann::json metadata;
  };

  std::string dir_, type_;
  int64_t dim_ = 0, generation_ = 0, next_id_ = 0;
  int nprobe_ = 16, ef_search_ = 64;
  Mode mode_ = Mode::ReadOnly;
  int lock_fd_ = -1;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<faiss::Index> index_;
  std::unordered_map<int64_t, Cached> cache_;
  mutable std::shared_mutex mu_;
  mutable std::mutex catalog_mu_;  // one statement at a time on the SQLite connection
};

nlohmann::json info_to_json(const IndexInfo& info);

// Is `type` a FAISS factory string this build accepts for `dim`? InputError naming it if not.
void validate_index_type(const std::string& type, int64_t dim);

}  // namespace omnibind::retrieval
