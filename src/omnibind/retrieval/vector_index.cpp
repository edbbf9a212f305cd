#include "omnibind/retrieval/vector_index.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/HNSW.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace fs = std::filesystem;
using idx_t = faiss::Index::idx_t;  // faiss 1.7.3 spelling

namespace omnibind::retrieval {

namespace {
constexpr const char* kCatalog = "catalog.sqlite";

// Failpoints for the crash tests: OMNIBIND_FAILPOINT=<name> makes the process SIGKILL itself there.
void failpoint(const char* name) {
  const char* fp = std::getenv("OMNIBIND_FAILPOINT");
  if (fp && std::string(fp) == name) std::raise(SIGKILL);
}

int64_t meta_int(const Catalog& c, const std::string& key, const std::string& dir) {
  auto v = c.get_meta(key);
  if (!v) throw InputError(dir + ": catalog has no '" + key + "' (not an omnibind index, or damaged)");
  try {
    return std::stoll(*v);
  } catch (...) {
    throw InputError(dir + ": catalog meta '" + key + "' is not a number: " + *v);
  }
}

faiss::IndexIDMap2* as_idmap(faiss::Index* idx) { return dynamic_cast<faiss::IndexIDMap2*>(idx); }

bool is_exact_type(const std::string& type) { return type == "Flat" || type == "IDMap,Flat"; }

// L2-normalises rows in place; InputError naming the row (counted from `first`) for non-finite or zero rows.
void normalise_rows(float* rows, int64_t n, int64_t dim, int64_t first = 0) {
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    float* r = rows + i * dim;
    for (int64_t j = 0; j < dim; ++j) {
      require(std::isfinite(r[j]), "row " + std::to_string(first + i) + " holds a non-finite value");
      s += double(r[j]) * r[j];
    }
    require(s > 1e-24, "row " + std::to_string(first + i) + " is all zeros (cannot be normalised)");
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (int64_t j = 0; j < dim; ++j) r[j] *= inv;
  }
}

std::string faiss_message(const std::exception& e) {
  const std::string msg = e.what();
  return msg.substr(0, msg.find('\n'));
}
}  // namespace

void validate_index_type(const std::string& type, int64_t dim) {
  require(dim > 0 && dim <= 65536, "--dim must be in 1..65536, got " + std::to_string(dim));
  require(!type.empty(), "--type must be a FAISS factory string such as Flat, IVF256,Flat, HNSW32, SQ8");
  require(type.find("IDMap") == std::string::npos, "--type '" + type + "': do not add IDMap, ids are managed by the index");
  try {
    std::unique_ptr<faiss::Index> idx(faiss::index_factory(static_cast<int>(dim), type.c_str(), faiss::METRIC_INNER_PRODUCT));
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw InputError("--type '" + type + "' is not a valid FAISS index for dim " + std::to_string(dim) + ": " +
                     msg.substr(0, msg.find('\n')));
  }
}

void VectorIndex::create(const std::string& dir, const CreateOptions& o) {
  validate_index_type(o.type, o.dim);
  require(o.nprobe >= 1 && o.ef_search >= 1, "--nprobe and --ef-search must be >= 1");
  const std::string cat = dir + "/" + kCatalog;
  require(!fs::exists(cat), dir + " already holds an index (catalog.sqlite exists)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, "cannot create directory " + dir + ": " + ec.message());
  // Build the catalog under a temporary name and rename it: a crash never leaves half an index.
  const std::string tmp = cat + ".tmp." + std::to_string(::getpid());
  fs::remove(tmp, ec);
  {
    Catalog c(tmp, true);
    c.begin();
    c.set_meta("format", "1");
    c.set_meta("dim", std::to_string(o.dim));
    c.set_meta("type", o.type);
    c.set_meta("generation", "0");
    c.set_meta("next_id", "0");
    c.set_meta("nprobe", std::to_string(o.nprobe));
    c.set_meta("ef_search", std::to_string(o.ef_search));
    c.commit();
  }
  if (std::rename(tmp.c_str(), cat.c_str()) != 0) {
    fs::remove(tmp, ec);
    throw InputError("cannot create " + cat);
  }
  // Generation 0's (empty) FAISS file is written by the first writer that opens it.
}

std::unique_ptr<VectorIndex> VectorIndex::open(const std::string& dir, Mode mode) {
  const std::string cat = dir + "/" + kCatalog;
  require(fs::is_regular_file(cat), dir + " is not an index directory (no catalog.sqlite); make one with `omnibind index create`");
  std::unique_ptr<VectorIndex> v(new VectorIndex());
  v->dir_ = dir;
  v->mode_ = mode;
  if (mode == Mode::ReadWrite) {
    v->lock_fd_ = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    require(v->lock_fd_ >= 0, "cannot open " + dir + "/lock for writing");
    require(::flock(v->lock_fd_, LOCK_EX | LOCK_NB) == 0,
            dir + " is being written by another process (a server or an `index add`); stop it first");
  }
  v->catalog_ = std::make_unique<Catalog>(cat, false);
  v->load_or_rebuild(mode == Mode::ReadWrite);
  return v;
}

VectorIndex::~VectorIndex() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string VectorIndex::index_path(int64_t gen) const { return dir_ + "/index." + std::to_string(gen) + ".faiss"; }

std::unique_ptr<faiss::Index> VectorIndex::new_empty_index() const {
  faiss::Index* base = faiss::index_factory(static_cast<int>(dim_), type_.c_str(), faiss::METRIC_INNER_PRODUCT);
  // index_factory turns on polysemous training for IVF-PQ: a simulated annealing over the PQ codes (minutes
  // even for a few thousand training rows) that only polysemous Hamming filtering uses, which searches
  // here never enable (polysemous_ht stays 0), so it is skipped.
  if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(base)) ivfpq->do_polysemous_training = false;
  auto* idmap = new faiss::IndexIDMap2(base);
  idmap->own_fields = true;
  return std::unique_ptr<faiss::Index>(idmap);
}

std::unique_ptr<faiss::Index> VectorIndex::rebuild_from_catalog() const {
  auto idx = new_empty_index();
  std::vector<float> rows;
  std::vector<idx_t> ids;
  catalog_->for_each([&](const ItemRecord& r, const float* v) {
    ids.push_back(r.id);
    rows.insert(rows.end(), v, v + dim_);
  }, true);
  if (ids.empty()) return idx;
  try {
    if (!idx->is_trained) idx->train(static_cast<idx_t>(ids.size()), rows.data());
    idx->add_with_ids(static_cast<idx_t>(ids.size()), rows.data(), ids.data());
  } catch (const faiss::FaissException& e) {
    std::string msg = e.what();
    throw InputError(dir_ + ": cannot build a '" + type_ + "' index from " + std::to_string(ids.size()) +
                     " vectors: " + msg.substr(0, msg.find('\n')));
  }
  return idx;
}

void VectorIndex::load_or_rebuild(bool writer) {
  // Readers hold a read transaction so that generation, count and file belong to one commit.
  if (!writer) catalog_->begin_read();
  try {
    if (meta_int(*catalog_, "format", dir_) != 1) throw InputError(dir_ + ": unsupported index format");
    dim_ = meta_int(*catalog_, "dim", dir_);
    generation_ = meta_int(*catalog_, "generation", dir_);
    next_id_ = meta_int(*catalog_, "next_id", dir_);
    nprobe_ = static_cast<int>(meta_int(*catalog_, "nprobe", dir_));
    ef_search_ = static_cast<int>(meta_int(*catalog_, "ef_search", dir_));
    type_ = catalog_->get_meta("type").value_or("Flat");
    const int64_t count = catalog_->count();
    index_.reset();
    const std::string path = index_path(generation_);
    if (fs::exists(path)) {
      try {
        std::unique_ptr<faiss::Index> idx(faiss::read_index(path.c_str()));
        if (idx->d == dim_ && idx->ntotal == count && as_idmap(idx.get())) index_ = std::move(idx);
      } catch (const std::exception&) {
        // damaged file: rebuilt below from the catalog
      }
    }
    bool rebuilt = false;
    if (!index_) {
      index_ = rebuild_from_catalog();
      rebuilt = true;
    }
    cache_.clear();
    catalog_->for_each([&](const ItemRecord& r, const float*) {
      auto meta = nlohmann::json::parse(r.metadata, nullptr, false);
      if (!meta.is_object()) meta = nlohmann::json::object();
      cache_[r.id] = Cached{r.modality, r.labels, std::move(meta)};
    }, false);
    if (!writer) catalog_->rollback();
    if (writer) {
      if (rebuilt) write_generation(generation_);
      // Leftovers of an interrupted write: other generations' files and temporaries.
      for (auto& e : fs::directory_iterator(dir_)) {
        std::string name = e.path().filename().string();
        bool faiss_file = name.rfind("index.", 0) == 0 && name.find(".faiss") != std::string::npos;
        bool tmp = name.find(".tmp.") != std::string::npos;
        if ((faiss_file && e.path().string() != path) || tmp) fs::remove(e.path());
      }
    }
  } catch (...) {
    if (!writer) catalog_->rollback();
    throw;
  }
}

void VectorIndex::write_generation(int64_t gen) const {
  write_file_atomically(index_path(gen), [&](const std::string& tmp) { faiss::write_index(index_.get(), tmp.c_str()); });
}

void VectorIndex::abandon_generation(int64_t gen, bool in_txn) {
  if (in_txn) catalog_->rollback();
  std::error_code ec;
  fs::remove(index_path(gen), ec);
  try {
    std::unique_ptr<faiss::Index> idx(faiss::read_index(index_path(generation_).c_str()));
    index_ = std::move(idx);
  } catch (...) {
    index_ = rebuild_from_catalog();
  }
}

void VectorIndex::adopt_generation(int64_t gen) {
  std::error_code ec;
  fs::remove(index_path(generation_), ec);
  generation_ = gen;
}

int64_t VectorIndex::size() const {
  std::shared_lock lk(mu_);
  return index_->ntotal;
}

std::vector<int64_t> VectorIndex::add(const std::vector<ItemRecord>& items, const float* rows, int64_t n,
                                      bool measure) {
  require(mode_ == Mode::ReadWrite, dir_ + ": opened read-only");
  require(n > 0, "nothing to add: 0 rows");
  require(static_cast<int64_t>(items.size()) == n, "internal: items/rows count mismatch");
  std::vector<float> buf(rows, rows + n * dim_);
  normalise_rows(buf.data(), n, dim_);
  for (auto& it : items) require(!it.modality.empty(), "every item needs a modality");

  std::unique_lock lk(mu_);
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = next_id_ + i;
  const int64_t gen = generation_ + 1;
  bool in_txn = false;
  try {
    if (!index_->is_trained) {
      try {
        index_->train(n, buf.data());
      } catch (const faiss::FaissException& e) {
        std::string msg = e.what();
        throw InputError("index type '" + type_ + "' could not be trained on the first add (" + std::to_string(n) +
                         " rows): " + msg.substr(0, msg.find('\n')) + "; add more rows at once or use a smaller index");
      }
    }
    index_->add_with_ids(n, buf.data(), reinterpret_cast<const idx_t*>(ids.data()));
    std::lock_guard cl(catalog_mu_);
    catalog_->begin();
    in_txn = true;
    for (int64_t i = 0; i < n; ++i) {
      ItemRecord r = items[i];
      r.id = ids[i];
      if (r.metadata.empty()) r.metadata = "{}";
      catalog_->insert(r, buf.data() + i * dim_, dim_);
    }
    catalog_->set_meta("generation", std::to_string(gen));
    catalog_->set_meta("next_id", std::to_string(next_id_ + n));
    write_generation(gen);
    failpoint("add_before_commit");
    catalog_->commit();
    in_txn = false;
  } catch (...) {
    abandon_generation(gen, in_txn);  // the in-memory index may hold the new rows
    throw;
  }
  failpoint("add_after_commit");
  adopt_generation(gen);
  next_id_ += n;
  for (int64_t i = 0; i < n; ++i) {
    auto meta = nlohmann::json::parse(items[i].metadata.empty() ? "{}" : items[i].metadata, nullptr, false);
    if (!meta.is_object()) meta = nlohmann::json::object();
    cache_[ids[i]] = Cached{items[i].modality, items[i].labels, std::move(meta)};
  }
  lk.unlock();
  if (measure && !is_exact_type(type_)) {
    double r = measure_recall();
    std::lock_guard cl(catalog_mu_);
    catalog_->set_meta("recall_at_10", std::to_string(r));
  }
  return ids;
}

bool VectorIndex::is_trained() const {
  std::shared_lock lk(mu_);
  return index_->is_trained;
}

void VectorIndex::train(const float* rows, int64_t n) {
  require(mode_ == Mode::ReadWrite, dir_ + ": opened read-only");
  std::unique_lock lk(mu_);
  if (index_->is_trained) return;  // Flat, HNSW, ...: nothing to learn
  require(index_->ntotal == 0, dir_ + ": the index already holds items; train it before the first add");
  require(n > 0, "nothing to train on: 0 rows");
  std::vector<float> buf(rows, rows + n * dim_);
  normalise_rows(buf.data(), n, dim_);
  const int64_t gen = generation_ + 1;
  bool in_txn = false;
  try {
    try {
      index_->train(n, buf.data());
    } catch (const faiss::FaissException& e) {
      throw InputError("index type '" + type_ + "' could not be trained on " + std::to_string(n) + " rows: " + faiss_message(e) +
                       "; train on more rows or use a smaller index");
    }
    std::lock_guard cl(catalog_mu_);
    catalog_->begin();
    in_txn = true;
    catalog_->set_meta("generation", std::to_string(gen));
    catalog_->set_meta("trained_on", std::to_string(n));
    write_generation(gen);
    catalog_->commit();
    in_txn = false;
  } catch (...) {
    if (in_txn) catalog_->rollback();
    std::error_code ec;
    fs::remove(index_path(gen), ec);
    index_ = new_empty_index();  // untrained again, as committed
    throw;
  }
  adopt_generation(gen);
}

std::pair<int64_t, int64_t> VectorIndex::add_stream(
    const std::function<bool(std::vector<ItemRecord>&, std::vector<float>&)>& next, bool measure) {
  require(mode_ == Mode::ReadWrite, dir_ + ": opened read-only");
  std::unique_lock lk(mu_);
  const int64_t first = next_id_, gen = generation_ + 1;
  int64_t count = 0;
  bool in_txn = false;
  std::vector<ItemRecord> items;
  std::vector<float> rows;
  try {
    std::lock_guard cl(catalog_mu_);
    catalog_->begin();
    in_txn = true;
    for (;;) {
      items.clear();
      rows.clear();
      if (!next(items, rows)) break;
      const int64_t n = static_cast<int64_t>(items.size());
      if (n == 0) continue;
      require(static_cast<int64_t>(rows.size()) == n * dim_, "internal: a chunk of " + std::to_string(n) + " items holds " +
                                                                 std::to_string(rows.size()) + " values, not n x " +
                                                                 std::to_string(dim_));
      normalise_rows(rows.data(), n, dim_, count);
      for (auto& it : items) require(!it.modality.empty(), "every item needs a modality");
      if (!index_->is_trained) {
        try {
          index_->train(n, rows.data());
        } catch (const faiss::FaissException& e) {
          throw InputError("index type '" + type_ + "' could not be trained on the first chunk (" + std::to_string(n) +
                           " rows): " + faiss_message(e) + "; train it on a sample first");
        }
      }
      std::vector<idx_t> ids(n);
      for (int64_t i = 0; i < n; ++i) ids[i] = first + count + i;
      index_->add_with_ids(n, rows.data(), ids.data());
      for (int64_t i = 0; i < n; ++i) {
        ItemRecord& r = items[i];
        r.id = ids[i];
        if (r.metadata.empty()) r.metadata = "{}";
        catalog_->insert(r, rows.data() + i * dim_, dim_);
        auto meta = nlohmann::json::parse(r.metadata, nullptr, false);
        if (!meta.is_object()) meta = nlohmann::json::object();
        cache_[r.id] = Cached{r.modality, r.labels, std::move(meta)};
      }
      count += n;
    }
    if (count == 0) {
      catalog_->rollback();
      return {first, 0};
    }
    catalog_->set_meta("generation", std::to_string(gen));
    catalog_->set_meta("next_id", std::to_string(first + count));
    write_generation(gen);
    failpoint("add_before_commit");
    catalog_->commit();
    in_txn = false;
  } catch (...) {
    for (int64_t id = first; id < first + count + static_cast<int64_t>(items.size()); ++id) cache_.erase(id);
    abandon_generation(gen, in_txn);
    throw;
  }
  failpoint("add_after_commit");
  adopt_generation(gen);
  next_id_ = first + count;
  lk.unlock();
  if (measure && !is_exact_type(type_)) {
    double r = measure_recall();
    std::lock_guard cl(catalog_mu_);
    catalog_->set_meta("recall_at_10", std::to_string(r));
  }
  return {first, count};
}

size_t VectorIndex::remove(const std::vector<int64_t>& ids) {
  require(mode_ == Mode::ReadWrite, dir_ + ": opened read-only");
  std::unique_lock lk(mu_);
  std::vector<idx_t> present;
  for (int64_t id : ids)
    if (cache_.count(id)) present.push_back(id);
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  if (present.empty()) return 0;
  const int64_t gen = generation_ + 1;
  bool in_txn = false;
  try {
    std::lock_guard cl(catalog_mu_);
    catalog_->begin();
    in_txn = true;
    for (auto id : present) catalog_->erase(id);
    try {
      faiss::IDSelectorBatch sel(present.size(), present.data());
      index_->remove_ids(sel);
    } catch (const faiss::FaissException&) {
      index_ = rebuild_from_catalog();  // types without removal (HNSW): rebuild from the catalog
    }
    catalog_->set_meta("generation", std::to_string(gen));
    write_generation(gen);
    catalog_->commit();
    in_txn = false;
  } catch (...) {
    abandon_generation(gen, in_txn);
    throw;
  }
  adopt_generation(gen);
  for (auto id : present) cache_.erase(id);
  return present.size();
}

bool filter_accepts(const Filter& f, int64_t id, const std::string& modality, const std::vector<std::string>& labels,
                    const nlohmann::json& metadata) {
  if (!f.modalities.empty() && std::find(f.modalities.begin(), f.modalities.end(), modality) == f.modalities.end())
    return false;
  if (std::find(f.exclude.begin(), f.exclude.end(), id) != f.exclude.end()) return false;
  for (auto& [key, value] : f.where) {
    if (key == "label") {
      if (std::find(labels.begin(), labels.end(), value) == labels.end()) return false;
      continue;
    }
    if (key == "modality") {
      if (modality != value) return false;
      continue;
    }
    if (!metadata.is_object()) return false;
    auto m = metadata.find(key);
    if (m == metadata.end()) return false;
    std::string s = m->is_string() ? m->get<std::string>() : m->dump();
    if (s != value) return false;
  }
  return true;
}

bool VectorIndex::matches(int64_t id, const Filter& f) const {
  auto it = cache_.find(id);
  if (it == cache_.end()) return false;
  return filter_accepts(f, id, it->second.modality, it->second.labels, it->second.metadata);
}

namespace {
// Searches the IDMap's inner index with per-call parameters, then maps positions to ids.
void raw_search(const faiss::Index* index, const float* q, int64_t nq, int64_t k, int nprobe, int ef,
                std::vector<float>& D, std::vector<idx_t>& I) {
  auto* idmap = dynamic_cast<const faiss::IndexIDMap2*>(index);
  D.assign(nq * k, 0);
  I.assign(nq * k, -1);
  faiss::SearchParametersIVF ivf;
  ivf.nprobe = static_cast<size_t>(nprobe);
  faiss::SearchParametersHNSW hnsw;
  hnsw.efSearch = ef;
  const faiss::SearchParameters* params = nullptr;
  if (dynamic_cast<const faiss::IndexIVF*>(idmap->index)) params = &ivf;
  if (dynamic_cast<const faiss::IndexHNSW*>(idmap->index)) params = &hnsw;
  idmap->index->search(nq, q, k, D.data(), I.data(), params);
  for (auto& i : I)
    if (i >= 0) i = idmap->id_map[i];
}
}  // namespace

std::vector<Hit> VectorIndex::search(const float* query, int64_t k, const Filter& filter, int nprobe) const {
  require(k >= 1, "k must be >= 1");
  std::shared_lock lk(mu_);
  const int64_t total = index_->ntotal;
  std::vector<Hit> out;
  if (total == 0) return out;
  const int np = nprobe > 0 ? nprobe : nprobe_;
  int64_t fetch = filter.empty() ? std::min(k, total) : std::min(total, std::max<int64_t>(4 * k, 64));
  std::vector<float> D;
  std::vector<idx_t> I;
  for (;;) {
    raw_search(index_.get(), query, 1, fetch, np, std::max<int>(ef_search_, static_cast<int>(fetch)), D, I);
    out.clear();
    for (int64_t i = 0; i < fetch && static_cast<int64_t>(out.size()) < k; ++i) {
      if (I[i] < 0) continue;
      if (!filter.empty() && !matches(I[i], filter)) continue;
      out.push_back({I[i], D[i]});
    }
    if (static_cast<int64_t>(out.size()) >= k || fetch >= total) break;
    fetch = std::min(total, fetch * 4);
  }
  return out;
}

std::vector<std::vector<Hit>> VectorIndex::search_batch(const float* queries, int64_t nq, int64_t k) const {
  require(k >= 1, "k must be >= 1");
  std::shared_lock lk(mu_);
  std::vector<std::vector<Hit>> out(nq);
  const int64_t total = index_->ntotal;
  if (total == 0 || nq == 0) return out;
  const int64_t kk = std::min(k, total);
  std::vector<float> D;
  std::vector<idx_t> I;
  raw_search(index_.get(), queries, nq, kk, nprobe_, std::max<int>(ef_search_, static_cast<int>(kk)), D, I);
  for (int64_t q = 0; q < nq; ++q)
    for (int64_t i = 0; i < kk; ++i)
      if (I[q * kk + i] >= 0) out[q].push_back({I[q * kk + i], D[q * kk + i]});
  return out;
}

std::optional<ItemRecord> VectorIndex::item(int64_t id) const {
  std::shared_lock lk(mu_);
  auto it = cache_.find(id);
  if (it == cache_.end()) return std::nullopt;
  std::lock_guard cl(catalog_mu_);
  return catalog_->item(id);
}

bool VectorIndex::vector(int64_t id, std::vector<float>& out) const {
  std::shared_lock lk(mu_);
  if (!cache_.count(id)) return false;
  std::lock_guard cl(catalog_mu_);
  return catalog_->vector(id, out);
}

void VectorIndex::for_each(const std::function<void(const ItemRecord&, const float*)>& fn, bool with_vectors) const {
  std::shared_lock lk(mu_);
  std::lock_guard cl(catalog_mu_);
  catalog_->for_each(fn, with_vectors);
}

double VectorIndex::measure_recall(int64_t nq, int64_t k) const {
  std::shared_lock lk(mu_);
  const int64_t total = index_->ntotal;
  if (total == 0) return 1.0;
  // Exact ground truth over the catalog's stored vectors (the index itself may be lossy), streamed in
  // chunks with a running top-k per query: memory is one chunk, whatever the index size.
  nq = std::min<int64_t>(nq, total);
  k = std::min(k, total);
  const int64_t step = total / nq;
  std::vector<float> queries(nq * dim_);
  constexpr int64_t kChunk = 16384;
  std::vector<std::vector<std::pair<float, int64_t>>> best(nq);  // per query: (score, id), best first
  {
    std::lock_guard cl(catalog_mu_);
    int64_t pos = 0, q = 0;
    catalog_->for_each([&](const ItemRecord&, const float* v) {  // the queries: every step-th stored vector
      if (q < nq && pos == q * step) std::copy(v, v + dim_, queries.data() + (q++) * dim_);
      ++pos;
    }, true);
    faiss::IndexFlatIP chunk(dim_);
    std::vector<int64_t> chunk_ids;
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    auto flush = [&] {
      if (chunk_ids.empty()) return;
      const int64_t kk = std::min<int64_t>(k, static_cast<int64_t>(chunk_ids.size()));
      chunk.search(nq, queries.data(), kk, D.data(), I.data());
      for (int64_t qi = 0; qi < nq; ++qi) {
        auto& b = best[qi];
        for (int64_t i = 0; i < kk; ++i)
          if (I[qi * kk + i] >= 0) b.emplace_back(D[qi * kk + i], chunk_ids[I[qi * kk + i]]);
        std::sort(b.begin(), b.end(), [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
        if (static_cast<int64_t>(b.size()) > k) b.resize(k);
      }
      chunk.reset();
      chunk_ids.clear();
    };
    std::vector<float> rows;
    rows.reserve(kChunk * dim_);
    catalog_->for_each([&](const ItemRecord& r, const float* v) {
      chunk_ids.push_back(r.id);
      rows.insert(rows.end(), v, v + dim_);
      if (static_cast<int64_t>(chunk_ids.size()) == kChunk) {
        chunk.add(kChunk, rows.data());
        rows.clear();
        flush();
      }
    }, true);
    if (!chunk_ids.empty()) {
      chunk.add(static_cast<idx_t>(chunk_ids.size()), rows.data());
      flush();
    }
  }
  std::vector<float> D2;
  std::vector<idx_t> I2;
  raw_search(index_.get(), queries.data(), nq, k, nprobe_, std::max<int>(ef_search_, static_cast<int>(k)), D2, I2);
  int64_t hit = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::set<int64_t> truth;
    for (const auto& [score, id] : best[q]) truth.insert(id);
    for (int64_t i = 0; i < k; ++i) hit += truth.count(I2[q * k + i]);
  }
  return double(hit) / double(nq * k);
}

nlohmann::json info_to_json(const IndexInfo& in) {
  nlohmann::json j{{"dir", in.dir},     {"type", in.type},             {"dim", in.dim},
                   {"count", in.count}, {"generation", in.generation}, {"nprobe", in.nprobe},
                   {"ef_search", in.ef_search}, {"exact", in.exact},   {"index_bytes", in.index_bytes}};
  j["per_modality"] = in.per_modality;
  j["recall_at_10"] = in.recall_at_10 ? nlohmann::json(*in.recall_at_10) : nlohmann::json(nullptr);
  return j;
}

IndexInfo VectorIndex::info() const {
  IndexInfo in;
  {
    std::shared_lock lk(mu_);
    in.dir = dir_;
    in.type = type_;
    in.dim = dim_;
    in.count = index_->ntotal;
    in.generation = generation_;
    in.nprobe = nprobe_;
    in.ef_search = ef_search_;
    in.exact = is_exact_type(type_);
    for (auto& [id, c] : cache_) in.per_modality[c.modality]++;
    std::error_code ec;
    auto sz = fs::file_size(index_path(generation_), ec);
    in.index_bytes = ec ? 0 : static_cast<int64_t>(sz);
  }
  if (in.exact) {
    in.recall_at_10 = 1.0;
  } else {
    std::lock_guard cl(catalog_mu_);
    if (auto r = catalog_->get_meta("recall_at_10")) in.recall_at_10 = std::atof(r->c_str());
  }
  return in;
}

}  // namespace omnibind::retrieval
