// omnibind index create|add|remove|info: the persistent index directory (FAISS + SQLite catalog).
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/retrieval/embedding_file.h"
#include "omnibind/retrieval/vector_index.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/embedding_pool.h"

namespace omnibind::cli {
namespace {

using retrieval::VectorIndex;
namespace fs = std::filesystem;

// `index create DIR --from-pool POOL --expert E`: an index over one expert's rows of an embedding pool
// (e.g. written by a distributed `embed --pool`), with bounded memory (docs/SCALING.md "The index at
// scale"): trained on a seeded sample of --train-sample rows, then filled --chunk-rows rows at a time in
// one transaction. Item i of modality m (pool order audio, image, point, text) gets metadata
// {"pool_row": r}, its class name(s) as labels when the pool has a label column.
struct FromPool {
  std::string pool, expert;
  std::vector<std::string> modalities;
  int64_t train_sample = 65536, chunk_rows = 65536;
  uint64_t seed = 0;
};

nlohmann::json create_from_pool(const std::string& dir, retrieval::CreateOptions co, const FromPool& f) {
  require(f.train_sample >= 1, "--train-sample must be at least 1");
  require(f.chunk_rows >= 1, "--chunk-rows must be at least 1");
  auto pool = training::EmbeddingPool::open(f.pool);
  const auto* expert = pool.manifest().find(f.expert);
  if (!expert) {
    std::string names;
    for (const auto& e : pool.manifest().experts) names += (names.empty() ? "" : ", ") + e.name;
    throw InputError("--expert " + f.expert + ": the pool " + f.pool + " has no such expert (it has " + names + ")");
  }
  require(co.dim == 0 || co.dim == expert->dim, "--dim " + std::to_string(co.dim) + " does not match " + f.expert + "'s " +
                                                    std::to_string(expert->dim) + " dims in " + f.pool);
  co.dim = expert->dim;
  std::vector<std::string> modalities;
  for (const auto& m : pool.modalities()) {
    if (!f.modalities.empty() && std::find(f.modalities.begin(), f.modalities.end(), m) == f.modalities.end()) continue;
    if (pool.has(m, f.expert) && pool.rows(m) > 0) modalities.push_back(m);
  }
  for (const auto& m : f.modalities)
    require(std::find(modalities.begin(), modalities.end(), m) != modalities.end(),
            "--modality " + m + ": the pool " + f.pool + " has no " + m + " rows embedded by " + f.expert);
  require(!modalities.empty(), f.pool + ": no rows embedded by " + f.expert);
  int64_t total = 0;
  for (const auto& m : modalities) total += pool.rows(m);

  require(!fs::exists(fs::path(dir) / "catalog.sqlite"), dir + " already holds an index (catalog.sqlite exists)");
  const bool made_dir = !fs::exists(dir);
  VectorIndex::create(dir, co);
  try {
    auto index = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
    int64_t max_rows = 0, trained_on = 0;
    // 1. Train on a seeded uniform sample without replacement (Floyd), read row by row from the pool.
    if (!index->is_trained()) {
      const int64_t s = std::min(f.train_sample, total);
      std::mt19937_64 rng(f.seed);
      std::unordered_set<int64_t> chosen;
      for (int64_t j = total - s; j < total; ++j) {
        const int64_t t = std::uniform_int_distribution<int64_t>(0, j)(rng);
        chosen.insert(chosen.count(t) ? j : t);
      }
      std::vector<int64_t> sample(chosen.begin(), chosen.end());
      std::sort(sample.begin(), sample.end());
      std::vector<float> rows;
      rows.reserve(s * co.dim);
      int64_t offset = 0;
      size_t next = 0;
      for (const auto& m : modalities) {
        std::vector<int64_t> local;
        for (; next < sample.size() && sample[next] < offset + pool.rows(m); ++next) local.push_back(sample[next] - offset);
        if (!local.empty()) {
          at::Tensor got = pool.gather(m, f.expert, at::tensor(local, at::kLong)).contiguous();
          rows.insert(rows.end(), got.data_ptr<float>(), got.data_ptr<float>() + got.numel());
        }
        offset += pool.rows(m);
      }
      index->train(rows.data(), s);
      trained_on = s;
      max_rows = s;
    }
    // 2. Add chunk by chunk in one transaction: labels from the pool's columns, row number as metadata.
    size_t mi = 0;
    int64_t begin = 0;
    std::optional<at::Tensor> label, labels;
    auto load_columns = [&] {
      label = pool.column(modalities[mi], "label");
      labels = pool.column(modalities[mi], "labels");
    };
    load_columns();
    const auto& classes = pool.manifest().classes;
    auto class_name = [&](int64_t c) { return c >= 0 && c < static_cast<int64_t>(classes.size()) ? classes[c] : std::to_string(c); };
    std::map<std::string, int64_t> per_modality;
    auto [first, count] = index->add_stream([&](std::vector<retrieval::ItemRecord>& items, std::vector<float>& rows) {
      while (mi < modalities.size() && begin >= pool.rows(modalities[mi])) {
        ++mi;
        begin = 0;
        if (mi < modalities.size()) load_columns();
      }
      if (mi == modalities.size()) return false;
      const std::string& m = modalities[mi];
      const int64_t end = std::min(pool.rows(m), begin + f.chunk_rows);
      at::Tensor got = pool.embeddings(m, f.expert, begin, end).contiguous();
      rows.assign(got.data_ptr<float>(), got.data_ptr<float>() + got.numel());
      max_rows = std::max(max_rows, end - begin);
      for (int64_t r = begin; r < end; ++r) {
        retrieval::ItemRecord it;
        it.modality = m;
        it.metadata = "{\"pool_row\":" + std::to_string(r) + "}";
        if (label && label->data_ptr<int64_t>()[r] >= 0) it.labels.push_back(class_name(label->data_ptr<int64_t>()[r]));
        if (labels) {
          const int64_t c = labels->size(1);
          const int64_t* row = labels->data_ptr<int64_t>() + r * c;
          for (int64_t j = 0; j < c; ++j)
            if (row[j] > 0) it.labels.push_back(class_name(j));
        }
        items.push_back(std::move(it));
      }
      per_modality[m] += end - begin;
      begin = end;
      return true;
    });
    const auto in = index->info();
    return {{"index", retrieval::info_to_json(in)}, {"pool", f.pool}, {"expert", f.expert}, {"added", count},
            {"first_id", first}, {"trained_on", trained_on}, {"max_rows_in_memory", max_rows}, {"per_modality", per_modality}};
  } catch (...) {
    // No half-built index: remove what create() and the writes left.
    std::error_code ec;
    if (made_dir) {
      fs::remove_all(dir, ec);
    } else {
      for (auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("catalog.sqlite", 0) == 0 || name == "lock" || name.rfind("index.", 0) == 0) fs::remove(e.path(), ec);
      }
    }
    throw;
  }
}

void print_info(const retrieval::IndexInfo& in) {
  std::printf("index %s\n  type %s, dim %lld, %lld items, generation %lld, %lld bytes\n", in.dir.c_str(),
              in.type.c_str(), static_cast<long long>(in.dim), static_cast<long long>(in.count),
              static_cast<long long>(in.generation), static_cast<long long>(in.index_bytes));
  for (auto& [m, c] : in.per_modality) std::printf("  %s: %lld\n", m.c_str(), static_cast<long long>(c));
  if (in.exact) std::printf("  recall@10 vs exact: 1 (exhaustive search)\n");
  else if (in.recall_at_10) std::printf("  recall@10 vs exact: %.4f (nprobe %d, efSearch %d)\n", *in.recall_at_10, in.nprobe, in.ef_search);
  else std::printf("  recall@10 vs exact: not measured yet (empty)\n");
}

VerbRun setup(CLI::App& sub) {
  sub.require_subcommand(1);
  struct Opts {
    std::string dir, type = "Flat", file, labels, metadata, modality, key;
    int64_t dim = 0;
    int nprobe = 16, ef_search = 64;
    std::vector<int64_t> ids;
    bool json = false, measure = false;
    FromPool from;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();

  auto* create = sub.add_subcommand("create", "Make an empty index directory");
  create->add_option("dir", o->dir, "Index directory to create")->required();
  create->add_option("--dim", o->dim, "Vector dimension (e.g. 1536 for the unified space); --from-pool: the expert's");
  create->add_option("--type", o->type, "FAISS factory string: Flat (exact, default), IVF256,Flat, IVF256,PQ32, HNSW32, SQfp16, SQ8");
  create->add_option("--nprobe", o->nprobe, "IVF: lists visited per query (default 16)");
  create->add_option("--ef-search", o->ef_search, "HNSW: search candidate list size (default 64)");
  create->add_option("--from-pool", o->from.pool, "Fill the index from an embedding pool (omnibind embed --pool), with bounded memory");
  create->add_option("--expert", o->from.expert, "--from-pool: the expert whose rows are indexed");
  create->add_option("--modality", o->from.modalities, "--from-pool: only these modalities (default: every one the expert has)");
  create->add_option("--train-sample", o->from.train_sample, "--from-pool: rows sampled (seeded) to train IVF/PQ types")
      ->capture_default_str();
  create->add_option("--chunk-rows", o->from.chunk_rows, "--from-pool: rows read and added at a time")->capture_default_str();
  create->add_option("--seed", o->from.seed, "--from-pool: seed of the training sample")->capture_default_str();
  create->add_option("--threads", o->threads, "--from-pool: threads for FAISS training and adding (0 = all cores)")->capture_default_str();
  create->add_flag("--json", o->json, "--from-pool: print the result as JSON");

  auto* add = sub.add_subcommand("add", "Add embeddings (safetensors [N,D] rows) to an index, atomically");
  add->add_option("dir", o->dir, "Index directory")->required();
  add->add_option("embeddings", o->file, "Embeddings .safetensors (from `omnibind embed` or `omnibind fuse`)")->required();
  add->add_option("--labels", o->labels, "JSON array: one label (or array of labels) per row");
  add->add_option("--metadata", o->metadata, "JSON object for every row, or array of one object per row");
  add->add_option("--modality", o->modality, "Modality of every row (default: from the key or the file's metadata)");
  add->add_option("--key", o->key, "Only this tensor of the file");
  add->add_flag("--json", o->json, "Print the result as JSON");

  auto* remove = sub.add_subcommand("remove", "Remove items by id, atomically");
  remove->add_option("dir", o->dir, "Index directory")->required();
  remove->add_option("ids", o->ids, "Item ids")->required();

  auto* info = sub.add_subcommand("info", "Show type, size, modalities and recall@10 against exact search");
  info->add_option("dir", o->dir, "Index directory")->required();
  info->add_flag("--json", o->json, "Print JSON");
  info->add_flag("--measure", o->measure, "Measure recall@10 now instead of showing the value from the last write");

  return [o, create, add, remove, info]() -> int {
    if (create->parsed() && !o->from.pool.empty()) {
      require(!o->from.expert.empty(), "--from-pool needs --expert NAME (the pool holds one embedding per expert)");
      require(o->threads >= 0, "--threads must be 0 (all cores) or a positive count");
      tensor_io::set_compute_threads(o->threads);
      auto j = create_from_pool(o->dir, retrieval::CreateOptions{o->dim, o->type, o->nprobe, o->ef_search}, o->from);
      if (o->json) {
        std::cout << j.dump() << "\n";
      } else {
        std::printf("created %s (type %s, dim %lld) from %s/%s: %lld items, trained on %lld rows, at most %lld rows in memory\n",
                    o->dir.c_str(), o->type.c_str(), static_cast<long long>(j["index"]["dim"].get<int64_t>()), o->from.pool.c_str(),
                    o->from.expert.c_str(), static_cast<long long>(j["added"].get<int64_t>()),
                    static_cast<long long>(j["trained_on"].get<int64_t>()), static_cast<long long>(j["max_rows_in_memory"].get<int64_t>()));
        if (!j["index"]["recall_at_10"].is_null() && !j["index"]["exact"].get<bool>())
          std::printf("recall@10 vs exact: %.4f\n", j["index"]["recall_at_10"].get<double>());
      }
      return 0;
    }
    if (create->parsed()) {
      require(o->dim > 0, "index create needs --dim D (or --from-pool POOL --expert NAME)");
      require(o->from.expert.empty() && o->from.modalities.empty(), "--expert and --modality go with --from-pool");
      VectorIndex::create(o->dir, retrieval::CreateOptions{o->dim, o->type, o->nprobe, o->ef_search});
      std::printf("created %s (type %s, dim %lld)\n", o->dir.c_str(), o->type.c_str(), static_cast<long long>(o->dim));
      return 0;
    }
    if (add->parsed()) {
      auto index = VectorIndex::open(o->dir, VectorIndex::Mode::ReadWrite);
      auto set = retrieval::read_embedding_file(o->file, {o->modality, o->key});
      require(set.dim == index->dim(), o->file + ": rows have " + std::to_string(set.dim) + " dims, the index " +
                                           o->dir + " has " + std::to_string(index->dim()));
      if (!o->labels.empty()) retrieval::apply_labels_file(set, o->labels);
      if (!o->metadata.empty()) retrieval::apply_metadata_file(set, o->metadata);
      auto ids = index->add(set.items, set.rows.data(), static_cast<int64_t>(set.items.size()));
      auto in = index->info();
      if (o->json) {
        nlohmann::json j{{"added", ids.size()}, {"first_id", ids.front()}, {"last_id", ids.back()}, {"index", retrieval::info_to_json(in)}};
        std::cout << j.dump() << "\n";
      } else {
        std::printf("added %zu items (ids %lld..%lld) to %s: %lld items\n", ids.size(), static_cast<long long>(ids.front()),
                    static_cast<long long>(ids.back()), o->dir.c_str(), static_cast<long long>(in.count));
        if (in.recall_at_10 && !in.exact) std::printf("recall@10 vs exact: %.4f\n", *in.recall_at_10);
      }
      return 0;
    }
    if (remove->parsed()) {
      auto index = VectorIndex::open(o->dir, VectorIndex::Mode::ReadWrite);
      size_t n = index->remove(o->ids);
      std::printf("removed %zu of %zu ids; %lld items left\n", n, o->ids.size(), static_cast<long long>(index->size()));
      return 0;
    }
    auto index = VectorIndex::open(o->dir, VectorIndex::Mode::ReadOnly);
    auto in = index->info();
    if (o->measure && !in.exact) in.recall_at_10 = index->measure_recall();
    if (o->json) std::cout << retrieval::info_to_json(in).dump() << "\n";
    else print_info(in);
    return 0;
  };
}

}  // namespace

REGISTER_VERB("index", "Create and maintain a search index: create | add | remove | info", setup);

}  // namespace omnibind::cli
