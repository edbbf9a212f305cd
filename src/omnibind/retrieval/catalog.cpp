#include "omnibind/retrieval/catalog.h"

#include <sqlite3.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "omnibind/common/error.h"

namespace omnibind::retrieval {

namespace {
// RAII prepared statement; errors name the catalog file.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql, const std::string& path) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
      throw InputError(path + ": catalog query failed: " + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
};

std::string labels_to_json(const std::vector<std::string>& labels) { return nlohmann::json(labels).dump(); }

std::vector<std::string> labels_from_json(const char* text) {
  std::vector<std::string> out;
  if (!text) return out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_array())
    for (auto& v : j)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

const char* col_text(sqlite3_stmt* s, int i) {
  auto* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

ItemRecord read_row(sqlite3_stmt* s) {
  ItemRecord r;
  r.id = sqlite3_column_int64(s, 0);
  r.modality = col_text(s, 1);
  r.source = col_text(s, 2);
  r.labels = labels_from_json(col_text(s, 3));
  r.metadata = col_text(s, 4);
  if (r.metadata.empty()) r.metadata = "{}";
  return r;
}
}  // namespace

Catalog::Catalog(const std::string& path, bool create) : path_(path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw InputError(path + ": cannot open the catalog: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  // Rollback journal + synchronous=FULL: a committed transaction survives SIGKILL and power loss.
  exec("PRAGMA synchronous=FULL");
  if (create) {
    exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, modality TEXT NOT NULL, source TEXT NOT NULL,"
         " labels TEXT NOT NULL, metadata TEXT NOT NULL, vec BLOB NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS items_modality ON items(modality)");
  }
}

Catalog::~Catalog() { sqlite3_close(db_); }

void Catalog::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw InputError(path_ + ": catalog error: " + msg);
  }
}

std::optional<std::string> Catalog::get_meta(const std::string& key) const {
  Stmt st(db_, "SELECT value FROM meta WHERE key=?", path_);
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) == SQLITE_ROW) return std::string(col_text(st.s, 0));
  return std::nullopt;
}

void Catalog::set_meta(const std::string& key, const std::string& value) {
  Stmt st(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", path_);
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw InputError(path_ + ": cannot write meta '" + key + "': " + sqlite3_errmsg(db_));
}

void Catalog::begin() { exec("BEGIN IMMEDIATE"); }
void Catalog::begin_read() {
  exec("BEGIN");
  exec("SELECT COUNT(*) FROM meta");  // takes the shared lock now
}
void Catalog::commit() { exec("COMMIT"); }
void Catalog::rollback() { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

void Catalog::insert(const ItemRecord& item, const float* vec, int64_t dim) {
  Stmt st(db_, "INSERT INTO items(id, modality, source, labels, metadata, vec) VALUES(?,?,?,?,?,?)", path_);
  std::string labels = labels_to_json(item.labels);
  sqlite3_bind_int64(st.s, 1, item.id);
  sqlite3_bind_text(st.s, 2, item.modality.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, item.source.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 4, labels.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 5, item.metadata.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st.s, 6, vec, static_cast<int>(dim * sizeof(float)), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw InputError(path_ + ": cannot insert item " + std::to_string(item.id) + ": " + sqlite3_errmsg(db_));
}

size_t Catalog::erase(int64_t id) {
  Stmt st(db_, "DELETE FROM items WHERE id=?", path_);
  sqlite3_bind_int64(st.s, 1, id);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw InputError(path_ + ": cannot remove item: " + sqlite3_errmsg(db_));
  return static_cast<size_t>(sqlite3_changes(db_));
}

int64_t Catalog::count() const {
  Stmt st(db_, "SELECT COUNT(*) FROM items", path_);
  return sqlite3_step(st.s) == SQLITE_ROW ? sqlite3_column_int64(st.s, 0) : 0;
}

void Catalog::for_each(const std::function<void(const ItemRecord&, const float*)>& fn, bool with_vectors) const {
  Stmt st(db_,
          with_vectors ? "SELECT id, modality, source, labels, metadata, vec FROM items ORDER BY id"
                       : "SELECT id, modality, source, labels, metadata FROM items ORDER BY id",
          path_);
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    ItemRecord r = read_row(st.s);
    const float* v = with_vectors ? static_cast<const float*>(sqlite3_column_blob(st.s, 5)) : nullptr;
    fn(r, v);
  }
  if (rc != SQLITE_DONE) throw InputError(path_ + ": catalog read failed: " + sqlite3_errmsg(db_));
}

bool Catalog::vector(int64_t id, std::vector<float>& out) const {
  Stmt st(db_, "SELECT vec FROM items WHERE id=?", path_);
  sqlite3_bind_int64(st.s, 1, id);
  if (sqlite3_step(st.s) != SQLITE_ROW) return false;
  int bytes = sqlite3_column_bytes(st.s, 0);
  out.resize(static_cast<size_t>(bytes) / sizeof(float));
  std::memcpy(out.data(), sqlite3_column_blob(st.s, 0), out.size() * sizeof(float));
  return true;
}

std::optional<ItemRecord> Catalog::item(int64_t id) const {
  Stmt st(db_, "SELECT id, modality, source, labels, metadata FROM items WHERE id=?", path_);
  sqlite3_bind_int64(st.s, 1, id);
  if (sqlite3_step(st.s) != SQLITE_ROW) return std::nullopt;
  return read_row(st.s);
}

}  // namespace omnibind::retrieval
