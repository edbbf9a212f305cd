// omnibind index create|add|remove|info: the persistent index directory (FAISS + SQLite catalog).
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/retrieval/embedding_file.h"
#include "omnibind/retrieval/vector_index.h"

namespace omnibind::cli {
namespace {

using retrieval::VectorIndex;

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
  };
  auto o = std::make_shared<Opts>();

  auto* create = sub.add_subcommand("create", "Make an empty index directory");
  create->add_option("dir", o->dir, "Index directory to create")->required();
  create->add_option("--dim", o->dim, "Vector dimension (e.g. 1536 for the unified space)")->required();
  create->add_option("--type", o->type, "FAISS factory string: Flat (exact, default), IVF256,Flat, IVF256,PQ32, HNSW32, SQfp16, SQ8");
  create->add_option("--nprobe", o->nprobe, "IVF: lists visited per query (default 16)");
  create->add_option("--ef-search", o->ef_search, "HNSW: search candidate list size (default 64)");

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
    if (create->parsed()) {
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
