// Embedding sets on disk -> rows for the index or for queries. A safetensors file whose tensors are
// [N, D] rows: `omnibind fuse` writes one per modality (key "<modality>"); `omnibind embed` writes
// keys with __metadata__ {"modality", "expert", "paths"} (paths: a JSON array of source files, or an
// object key -> array). Keys "audio/WAVCAPS_PT" style name their modality before the '/'.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "omnibind/retrieval/catalog.h"

namespace omnibind::retrieval {

struct EmbeddingSet {
  int64_t dim = 0;
  std::vector<ItemRecord> items;  // id unset; modality, source, metadata filled
  std::vector<float> rows;        // [items.size(), dim]
};

struct EmbeddingReadOptions {
  std::string modality;  // overrides what the file says
  std::string key;       // only this tensor (default: all, in file order)
};

// InputError naming the file and key on a wrong shape/dtype or an unknown modality.
EmbeddingSet read_embedding_file(const std::string& path, const EmbeddingReadOptions& options = {});

// Optional per-row annotations from JSON files, in the set's row order:
//  labels:   [ "dog", ["dog", "animal"], ... ]           (one entry per row)
//  metadata: [ {...}, {...} ]  (one object per row) or { ... } (merged into every row)
void apply_labels_file(EmbeddingSet& set, const std::string& path);
void apply_metadata_file(EmbeddingSet& set, const std::string& path);

}  // namespace omnibind::retrieval
