// The SQLite half of an index directory: one row per item (id, modality, source path, labels,
// JSON metadata, the exact f32 vector) plus a key/value `meta` table (dim, type, generation, ...).
// The exact vectors make the catalog the source of truth: the FAISS file can always be rebuilt
// from it, and recall against exact search can be measured for approximate index types.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace omnibind::retrieval {

struct ItemRecord {
  int64_t id = -1;
  std::string modality;
  std::string source;
  std::vector<std::string> labels;
  std::string metadata = "{}";  // JSON object text
};

class Catalog {
 public:
  explicit Catalog(const std::string& path, bool create);  // InputError naming the file on failure
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  std::optional<std::string> get_meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);  // inside or outside a transaction

  void begin();       // BEGIN IMMEDIATE (one writer)
  void begin_read();  // a read transaction: a consistent snapshot until rollback()
  void commit();
  void rollback();  // never throws

  void insert(const ItemRecord& item, const float* vec, int64_t dim);
  size_t erase(int64_t id);  // 0 when absent
  int64_t count() const;

  // Calls fn for every row in id order; the vector pointer is valid only during the call.
  void for_each(const std::function<void(const ItemRecord&, const float* vec)>& fn, bool with_vectors) const;
  bool vector(int64_t id, std::vector<float>& out) const;
  std::optional<ItemRecord> item(int64_t id) const;

 private:
  void exec(const char* sql) const;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace omnibind::retrieval
