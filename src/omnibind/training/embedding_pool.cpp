#include "omnibind/training/embedding_pool.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::training {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string>& pool_modalities() {
  static const std::vector<std::string> m{"audio", "image", "point", "text"};
  return m;
}
bool is_column(const std::string& name) { return name == "label" || name == "labels" || name == "source" || name == "pair"; }

}  // namespace

struct EmbeddingPool::Shard {
  std::string path;
  tensor_io::SafetensorsFile file;
  int64_t begin = 0, rows = 0;
  at::Tensor tensor(const std::string& name) const { return tensor_io::to_tensor(file.tensors.at(name)); }
};

bool PoolExpert::covers(const std::string& modality) const {
  return std::find(modalities.begin(), modalities.end(), modality) != modalities.end();
}

const PoolExpert* PoolManifest::find(const std::string& name) const {
  for (const auto& e : experts)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {

PoolManifest parse_manifest(const json& j, const std::string& where) {
  PoolManifest m;
  if (!j.is_object()) throw InputError(where + ": manifest must be a JSON object");
  if (j.contains("format") && j["format"] != "omnibind-pool")
    throw InputError(where + ": 'format' is " + j["format"].dump() + ", expected \"omnibind-pool\"");
  if (!j.contains("experts") || !j["experts"].is_array() || j["experts"].empty())
    throw InputError(where + ": 'experts' must be a non-empty array");
  for (size_t i = 0; i < j["experts"].size(); ++i) {
    const auto& e = j["experts"][i];
    const std::string at = where + ": experts[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty())
      throw InputError(at + " needs a non-empty string 'name'");
    PoolExpert pe;
    pe.name = e["name"];
    if (m.find(pe.name)) throw InputError(at + ": expert '" + pe.name + "' is listed twice");
    if (!e.contains("dim") || !e["dim"].is_number_integer() || e["dim"].get<int64_t>() <= 0)
      throw InputError(at + " ('" + pe.name + "') needs a positive integer 'dim'");
    pe.dim = e["dim"];
    if (!e.contains("modalities") || !e["modalities"].is_array() || e["modalities"].empty())
      throw InputError(at + " ('" + pe.name + "') needs a non-empty 'modalities' array");
    for (const auto& mod : e["modalities"]) {
      if (!mod.is_string() || std::find(pool_modalities().begin(), pool_modalities().end(), mod.get<std::string>()) ==
                                  pool_modalities().end())
        throw InputError(at + " ('" + pe.name + "'): unknown modality " + mod.dump() + " (audio, image, point, text)");
      pe.modalities.push_back(mod);
    }
    m.experts.push_back(std::move(pe));
  }
  m.backbone = j.value("backbone", "");
  if (!m.backbone.empty() && !m.find(m.backbone))
    throw InputError(where + ": backbone '" + m.backbone + "' is not one of the experts");
  if (j.contains("classes")) {
    if (!j["classes"].is_array()) throw InputError(where + ": 'classes' must be an array of strings");
    for (const auto& c : j["classes"]) {
      if (!c.is_string()) throw InputError(where + ": 'classes' must be an array of strings");
      m.classes.push_back(c);
    }
  }
  return m;
}

json manifest_json(const PoolManifest& m) {
  json j{{"format", "omnibind-pool"}, {"version", 1}};
  j["experts"] = json::array();
  for (const auto& e : m.experts) j["experts"].push_back({{"name", e.name}, {"modalities", e.modalities}, {"dim", e.dim}});
  if (!m.backbone.empty()) j["backbone"] = m.backbone;
  if (!m.classes.empty()) j["classes"] = m.classes;
  return j;
}

void check_int_column(const tensor_io::RawTensor& raw, const std::string& where, const std::string& name, int64_t rows) {
  if (raw.dtype != tensor_io::DType::I64) throw InputError(where + ": column '" + name + "' must be int64");
  const bool ok = name == "labels" ? raw.shape.size() == 2 && raw.shape[0] == rows : raw.shape.size() == 1 && raw.shape[0] == rows;
  if (!ok) throw InputError(where + ": column '" + name + "' has shape " + raw.shape_string() + " but the shard has " +
                            std::to_string(rows) + " rows");
}

}  // namespace

EmbeddingPool EmbeddingPool::open(const fs::path& dir) {
  EmbeddingPool pool;
  pool.dir_ = dir;
  const fs::path manifest_path = dir / "manifest.json";
  if (!fs::is_directory(dir)) throw InputError(dir.string() + ": not a pool directory");
  if (!fs::exists(manifest_path)) throw InputError(manifest_path.string() + ": missing (a pool directory needs manifest.json)");
  json j;
  try {
    j = json::parse(read_file_bytes(manifest_path.string()));
  } catch (const json::exception& e) {
    throw InputError(manifest_path.string() + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  pool.manifest_ = parse_manifest(j, manifest_path.string());
  const json mods = j.value("modalities", json::object());
  for (const auto& modality : pool_modalities()) {
    std::vector<std::string> files;
    int64_t declared_rows = -1;
    if (mods.contains(modality)) {
      const auto& mj = mods[modality];
      if (!mj.contains("shards") || !mj["shards"].is_array() || mj["shards"].empty())
        throw InputError(manifest_path.string() + ": modalities." + modality + ".shards must be a non-empty array");
      for (const auto& s : mj["shards"]) files.push_back(s.get<std::string>());
      declared_rows = mj.value("rows", int64_t{-1});
    } else if (fs::exists(dir / (modality + ".safetensors"))) {
      files.push_back(modality + ".safetensors");
    } else {
      continue;
    }
    int64_t begin = 0;
    for (const auto& name : files) {
      if (name.find("..") != std::string::npos || fs::path(name).is_absolute())
        throw InputError(manifest_path.string() + ": shard name '" + name + "' must be a file inside the pool");
      auto shard = std::make_shared<Shard>();
      shard->path = (dir / name).string();
      if (!fs::exists(shard->path)) throw InputError(shard->path + ": shard listed in the manifest is missing");
      shard->file = tensor_io::read_safetensors(shard->path);
      int64_t rows = -1;
      for (const auto& tname : shard->file.tensors.names()) {
        const auto& raw = shard->file.tensors.at(tname);
        if (is_column(tname)) continue;
        const PoolExpert* e = pool.manifest_.find(tname);
        if (!e) throw InputError(shard->path + ": tensor '" + tname + "' names no expert of the manifest");
        if (!e->covers(modality))
          throw InputError(shard->path + ": expert '" + tname + "' does not list modality '" + modality + "' in the manifest");
        if (raw.dtype != tensor_io::DType::F32 && raw.dtype != tensor_io::DType::F16 && raw.dtype != tensor_io::DType::BF16)
          throw InputError(shard->path + ": '" + tname + "' must be F32, F16 or BF16");
        if (raw.shape.size() != 2 || raw.shape[1] != e->dim)
          throw InputError(shard->path + ": '" + tname + "' has shape " + raw.shape_string() + ", expected [N, " +
                           std::to_string(e->dim) + "] (the manifest's dim)");
        if (rows >= 0 && raw.shape[0] != rows)
          throw InputError(shard->path + ": '" + tname + "' has " + std::to_string(raw.shape[0]) + " rows but other experts have " +
                           std::to_string(rows));
        rows = raw.shape[0];
      }
      for (const auto& e : pool.manifest_.experts)
        if (e.covers(modality) && !shard->file.tensors.contains(e.name))
          throw InputError(shard->path + ": missing expert '" + e.name + "' (the manifest says it covers " + modality + ")");
      if (rows < 0) throw InputError(shard->path + ": holds no expert embeddings");
      for (const auto& tname : shard->file.tensors.names())
        if (is_column(tname)) check_int_column(shard->file.tensors.at(tname), shard->path, tname, rows);
      shard->begin = begin;
      shard->rows = rows;
      begin += rows;
      pool.shards_[modality].push_back(shard);
    }
    if (declared_rows >= 0 && declared_rows != begin)
      throw InputError(manifest_path.string() + ": modalities." + modality + ".rows is " + std::to_string(declared_rows) +
                       " but the shards hold " + std::to_string(begin));
  }
  if (pool.shards_.empty()) throw InputError(dir.string() + ": the pool holds no modality files");
  if (fs::exists(dir / "prompts.safetensors")) {
    auto shard = std::make_shared<Shard>();
    shard->path = (dir / "prompts.safetensors").string();
    shard->file = tensor_io::read_safetensors(shard->path);
    if (!shard->file.tensors.contains("prompt_class")) throw InputError(shard->path + ": missing 'prompt_class'");
    const auto& pc = shard->file.tensors.at("prompt_class");
    if (pc.dtype != tensor_io::DType::I64 || pc.shape.size() != 1) throw InputError(shard->path + ": 'prompt_class' must be int64 [P]");
    shard->rows = pc.shape[0];
    for (const auto& tname : shard->file.tensors.names()) {
      if (tname == "prompt_class") continue;
      const PoolExpert* e = pool.manifest_.find(tname);
      const auto& raw = shard->file.tensors.at(tname);
      if (!e) throw InputError(shard->path + ": tensor '" + tname + "' names no expert of the manifest");
      if (raw.shape.size() != 2 || raw.shape[0] != shard->rows || raw.shape[1] != e->dim)
        throw InputError(shard->path + ": '" + tname + "' has shape " + raw.shape_string() + ", expected [" +
                         std::to_string(shard->rows) + ", " + std::to_string(e->dim) + "]");
    }
    pool.prompts_ = shard;
  }
  return pool;
}

std::vector<std::string> EmbeddingPool::modalities() const {
  std::vector<std::string> out;
  for (const auto& m : pool_modalities())
    if (shards_.count(m)) out.push_back(m);
  return out;
}

int64_t EmbeddingPool::rows(const std::string& modality) const {
  auto it = shards_.find(modality);
  if (it == shards_.end()) return 0;
  return it->second.back()->begin + it->second.back()->rows;
}

bool EmbeddingPool::has(const std::string& modality, const std::string& expert) const {
  auto it = shards_.find(modality);
  return it != shards_.end() && it->second.front()->file.tensors.contains(expert);
}

int64_t EmbeddingPool::dim(const std::string& expert) const {
  const PoolExpert* e = manifest_.find(expert);
  if (!e) throw InputError(dir_.string() + ": expert '" + expert + "' is not in the pool's manifest");
  return e->dim;
}

namespace {
void check_finite(const at::Tensor& rows, const std::string& path, const std::string& name, int64_t first_row) {
  const at::Tensor bad = rows.isfinite().all(1).logical_not();
  if (bad.any().item<bool>())
    throw InputError(path + ": '" + name + "' row " + std::to_string(first_row + bad.nonzero()[0][0].item<int64_t>()) +
                     " holds NaN or Inf");
}
}  // namespace

at::Tensor EmbeddingPool::embeddings(const std::string& modality, const std::string& expert, int64_t begin, int64_t end) const {
  if (!has(modality, expert))
    throw InputError(dir_.string() + ": no '" + expert + "' embeddings for " + modality);
  if (begin < 0 || end > rows(modality) || begin > end)
    throw InputError(dir_.string() + ": rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") outside " + modality +
                     "'s " + std::to_string(rows(modality)));
  std::vector<at::Tensor> parts;
  for (const auto& shard : shards_.at(modality)) {
    const int64_t lo = std::max(begin, shard->begin), hi = std::min(end, shard->begin + shard->rows);
    if (lo >= hi) continue;
    at::Tensor part = shard->tensor(expert).narrow(0, lo - shard->begin, hi - lo).to(at::kFloat).contiguous();
    check_finite(part, shard->path, expert, lo - shard->begin);
    parts.push_back(part);
  }
  if (parts.empty()) return at::empty({0, dim(expert)}, at::kFloat);
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

at::Tensor EmbeddingPool::gather(const std::string& modality, const std::string& expert, const at::Tensor& rows_index) const {
  if (!has(modality, expert)) throw InputError(dir_.string() + ": no '" + expert + "' embeddings for " + modality);
  const at::Tensor idx = rows_index.to(at::kLong).contiguous();
  const int64_t n = idx.numel(), total = rows(modality);
  if (n > 0 && (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= total))
    throw InputError(dir_.string() + ": a requested row is outside " + modality + "'s " + std::to_string(total) + " rows");
  at::Tensor out = at::empty({n, dim(expert)}, at::kFloat);
  // One index_select per shard over its mapped (zero-copy) tensor, converted to float32.
  for (const auto& s : shards_.at(modality)) {
    at::Tensor mask = idx.ge(s->begin).logical_and(idx.lt(s->begin + s->rows));
    at::Tensor where = mask.nonzero().squeeze(1);
    if (where.numel() == 0) continue;
    at::Tensor local = idx.index_select(0, where) - s->begin;
    out.index_copy_(0, where, s->tensor(expert).index_select(0, local).to(at::kFloat));
  }
  check_finite(out, dir_.string() + "/" + modality, expert, 0);
  return out;
}

std::optional<at::Tensor> EmbeddingPool::column(const std::string& modality, const std::string& name) const {
  auto it = shards_.find(modality);
  if (it == shards_.end() || !it->second.front()->file.tensors.contains(name)) return std::nullopt;
  std::vector<at::Tensor> parts;
  for (const auto& shard : it->second) {
    if (!shard->file.tensors.contains(name))
      throw InputError(shard->path + ": column '" + name + "' is missing (other shards of " + modality + " have it)");
    parts.push_back(shard->tensor(name).clone());
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

at::Tensor EmbeddingPool::prompt_embeddings(const std::string& expert) const {
  if (!prompts_ || !prompts_->file.tensors.contains(expert))
    throw InputError(dir_.string() + ": no class prompts embedded by '" + expert + "' (prompts.safetensors)");
  at::Tensor t = prompts_->tensor(expert).to(at::kFloat).contiguous();
  check_finite(t, prompts_->path, expert, 0);
  return t;
}

at::Tensor EmbeddingPool::prompt_class() const {
  if (!prompts_) throw InputError(dir_.string() + ": no prompts.safetensors");
  return prompts_->tensor("prompt_class").clone();
}

// ---------------------------------------------------------------------------------------------

PoolWriter::PoolWriter(fs::path dir, PoolManifest manifest, int64_t shard_rows)
    : dir_(std::move(dir)), manifest_(std::move(manifest)), shard_rows_(shard_rows) {
  if (manifest_.experts.empty()) throw InputError("pool writer: the manifest lists no experts");
  tmp_ = dir_;
  tmp_ += ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp_);
  fs::create_directories(tmp_);
}

PoolWriter::~PoolWriter() {
  if (!finished_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void PoolWriter::add(const std::string& modality, const std::map<std::string, at::Tensor>& expert_rows,
                     const std::map<std::string, at::Tensor>& columns) {
  if (std::find(pool_modalities().begin(), pool_modalities().end(), modality) == pool_modalities().end())
    throw InputError("pool writer: unknown modality '" + modality + "'");
  int64_t n = -1;
  for (const auto& e : manifest_.experts) {
    if (!e.covers(modality)) continue;
    auto it = expert_rows.find(e.name);
    if (it == expert_rows.end()) throw InputError("pool writer: " + modality + " rows lack expert '" + e.name + "'");
    const at::Tensor& t = it->second;
    if (t.dim() != 2 || t.size(1) != e.dim)
      throw InputError("pool writer: '" + e.name + "' " + modality + " rows must be [n, " + std::to_string(e.dim) + "]");
    if (n >= 0 && t.size(0) != n) throw InputError("pool writer: experts disagree on the number of " + modality + " rows");
    n = t.size(0);
  }
  for (const auto& [name, t] : expert_rows)
    if (!manifest_.find(name) || !manifest_.find(name)->covers(modality))
      throw InputError("pool writer: '" + name + "' does not cover " + modality + " in the manifest");
  if (n < 0) throw InputError("pool writer: no expert of the manifest covers " + modality);
  auto& p = pending_[modality];
  for (const auto& [name, t] : expert_rows) {
    at::Tensor rows = t.detach().to(at::kFloat).contiguous();
    if (!rows.isfinite().all().item<bool>()) throw InputError("pool writer: '" + name + "' " + modality + " rows hold NaN or Inf");
    p.tensors[name].push_back(half_ ? rows.to(at::kHalf) : rows);
  }
  std::vector<std::string> names;
  for (const auto& [name, t] : columns) {
    if (!is_column(name)) throw InputError("pool writer: unknown column '" + name + "' (label, labels, source, pair)");
    if (t.size(0) != n) throw InputError("pool writer: column '" + name + "' has " + std::to_string(t.size(0)) + " rows, expected " + std::to_string(n));
    p.tensors[name].push_back(t.to(at::kLong).contiguous());
    names.push_back(name);
  }
  if (p.rows > 0 && names != p.column_names) throw InputError("pool writer: every add() of " + modality + " must give the same columns");
  p.column_names = names;
  p.rows += n;
  if (p.rows - p.written >= shard_rows_) flush(modality);
}

void PoolWriter::flush(const std::string& modality) {
  auto& p = pending_.at(modality);
  if (p.rows == p.written) return;
  const std::string file = modality + "-" + std::to_string(p.shard_files.size()) + ".safetensors";
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, parts] : p.tensors) {
    tensors.emplace_back(name, parts.size() == 1 ? parts[0] : at::cat(parts, 0));
    parts.clear();
  }
  tensor_io::write_tensors((tmp_ / file).string(), tensors);
  p.shard_files.push_back(file);
  p.written = p.rows;
}

void PoolWriter::set_prompts(const std::map<std::string, at::Tensor>& expert_rows, const at::Tensor& prompt_class) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : expert_rows) {
    const PoolExpert* e = manifest_.find(name);
    if (!e || !e->covers("text")) throw InputError("pool writer: prompts by '" + name + "', which is not a text expert of the manifest");
    if (t.dim() != 2 || t.size(0) != prompt_class.size(0) || t.size(1) != e->dim)
      throw InputError("pool writer: prompts by '" + name + "' must be [" + std::to_string(prompt_class.size(0)) + ", " + std::to_string(e->dim) + "]");
    tensors.emplace_back(name, t.detach().to(at::kFloat).contiguous());
  }
  tensors.emplace_back("prompt_class", prompt_class.to(at::kLong).contiguous());
  tensor_io::write_tensors((tmp_ / "prompts.safetensors").string(), tensors);
}

void PoolWriter::finish() {
  json j = manifest_json(manifest_);
  j["modalities"] = json::object();
  for (auto& [modality, p] : pending_) {
    flush(modality);
    j["modalities"][modality] = {{"shards", p.shard_files}, {"rows", p.rows}};
  }
  write_bytes_atomically((tmp_ / "manifest.json").string(), j.dump(2) + "\n");
  fs::path old = dir_;
  old += ".old-" + std::to_string(::getpid());
  const bool replace = fs::exists(dir_);
  if (replace) fs::rename(dir_, old);
  fs::rename(tmp_, dir_);
  if (replace) fs::remove_all(old);
  finished_ = true;
}

}  // namespace omnibind::training
