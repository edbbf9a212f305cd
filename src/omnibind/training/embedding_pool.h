// Embedding pools: experts' embeddings of large unimodal item pools, the input of binding training
// and evaluation (format: docs/reference/embedding_pools.md).
//
// DIR/manifest.json  {"format":"omnibind-pool","version":1,"experts":[{"name","modalities","dim"}],
//                     "backbone":"NAME","classes":[...],"modalities":{"audio":{"shards":[...],"rows":N}}}
// DIR/<modality>.safetensors (or shards): <EXPERT> [N, d] f32/f16/bf16 unit rows, optional
//   label int64 [N] (or labels int64 [N, C]), source int64 [N] (texts), pair int64 [N] (evaluation sets)
// DIR/prompts.safetensors: <EXPERT> [P, d] class prompt embeddings, prompt_class int64 [P]
//
// Reading maps the shards and copies only the requested row ranges, so pools larger than memory
// stream. NaN/Inf rows are reported when they are read (the message names file, tensor and row).
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace omnibind::training {

struct PoolExpert {
  std::string name;
  std::vector<std::string> modalities;
  int64_t dim = 0;
  bool covers(const std::string& modality) const;
};

struct PoolManifest {
  std::vector<PoolExpert> experts;
  std::string backbone;
  std::vector<std::string> classes;
  const PoolExpert* find(const std::string& name) const;
};

class EmbeddingPool {
 public:
  // Validates manifest, shard headers, dims and row counts; InputError naming the file/key.
  static EmbeddingPool open(const std::filesystem::path& dir);

  const PoolManifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::vector<std::string> modalities() const;  // present, in audio/image/point/text order
  bool has_modality(const std::string& modality) const { return shards_.count(modality) != 0; }
  int64_t rows(const std::string& modality) const;  // 0 when absent
  bool has(const std::string& modality, const std::string& expert) const;
  int64_t dim(const std::string& expert) const;

  // Rows [begin, end) of an expert's embeddings as float32 [end-begin, d] (a copy).
  at::Tensor embeddings(const std::string& modality, const std::string& expert, int64_t begin, int64_t end) const;
  // Selected rows (int64 [B], any order) as float32 [B, d].
  at::Tensor gather(const std::string& modality, const std::string& expert, const at::Tensor& rows) const;
  // label / source / pair (int64 [N]) or labels (int64 [N, C]); nullopt when the pool lacks it.
  std::optional<at::Tensor> column(const std::string& modality, const std::string& name) const;

  bool has_prompts() const { return prompts_ != nullptr; }
  at::Tensor prompt_embeddings(const std::string& expert) const;  // float32 [P, d]
  at::Tensor prompt_class() const;                                // int64 [P]

  struct Shard;  // one mapped safetensors file and its row offset

 private:
  std::filesystem::path dir_;
  PoolManifest manifest_;
  std::map<std::string, std::vector<std::shared_ptr<Shard>>> shards_;  // modality -> shards in row order
  std::shared_ptr<Shard> prompts_;
};

// Writes a pool atomically (DIR.tmp-<pid> then rename; an existing DIR is replaced only at the end).
// Rows are buffered per modality and written as one shard per `shard_rows` rows.
class PoolWriter {
 public:
  PoolWriter(std::filesystem::path dir, PoolManifest manifest, int64_t shard_rows = 1 << 20);
  ~PoolWriter();
  PoolWriter(const PoolWriter&) = delete;
  PoolWriter& operator=(const PoolWriter&) = delete;

  // Appends rows of one modality: every expert of the manifest covering it, [n, d] each (unit rows;
  // stored as float32, or float16 when `half`), plus optional int64 columns (label/source/pair/labels).
  void add(const std::string& modality, const std::map<std::string, at::Tensor>& expert_rows,
           const std::map<std::string, at::Tensor>& columns = {});
  void set_prompts(const std::map<std::string, at::Tensor>& expert_rows, const at::Tensor& prompt_class);
  void set_half(bool half) { half_ = half; }
  void finish();

 private:
  void flush(const std::string& modality);
  std::filesystem::path dir_, tmp_;
  PoolManifest manifest_;
  int64_t shard_rows_;
  bool half_ = false, finished_ = false;
  struct Pending {
    std::map<std::string, std::vector<at::Tensor>> tensors;
    int64_t rows = 0, written = 0;
    std::vector<std::string> shard_files;
    std::vector<std::string> column_names;
  };
  std::map<std::string, Pending> pending_;
};

}  // namespace omnibind::training
