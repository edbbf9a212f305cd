// Extraction into an embedding pool over several ranks (issue 17 item 2, docs/SCALING.md "Extraction"):
// `omnibind embed --model BUNDLE --manifest FILES.txt --pool DIR` embeds a list of files with every expert
// the bundle runs for one modality and writes the pool format (embedding_pool.h) shard by shard.
//
// Shard k holds inputs [k*S, (k+1)*S) of the list (S = shard_items, never the number of ranks) and is
// embedded by rank k mod WORLD_SIZE in batches of `batch` counted from the shard's start, so every shard
// file is the same bytes whatever the number of ranks. Ranks go in rounds of one shard each, closed by
// an all-reduce of the counts (rank 0 prints overall progress; no collective waits more than one shard).
// Each finished shard gets a sidecar `<modality>-<kkkkk>.json` (its inputs' fingerprint, rows, the
// file's size and SHA-256, the inputs skipped); a rerun skips shards whose sidecar matches and whose
// file still hashes to it. After a barrier rank 0 checks every sidecar (fingerprint, file size) and
// writes `<modality>-report.json` and manifest.json (merged with the modalities already in DIR).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/distributed/distributed_context.h"
#include "omnibind/experts/expert.h"
#include "omnibind/pipeline/model_bundle.h"

namespace omnibind::training {

// One line of the input list: a path and optional label / source columns (as written).
struct ExtractionInput {
  std::string path;      // as written in the list (names it in reports and the fingerprint)
  std::string resolved;  // what is opened: relative paths against the list file's directory
  std::string label;     // "" = unknown; an integer (class id) or a class name
  std::string source;    // "" = unknown; audio | image | point (or 0 | 1 | 2), for texts
};

// FILES.txt (one path a line, optional TAB label TAB source; '#' comments and blank lines skipped) or a
// directory (recursed, sorted, files with the modality's extensions; no labels). InputError naming the
// list and line on a malformed line; files are not opened here (a missing one is a skipped input).
std::vector<ExtractionInput> read_extraction_list(const std::string& list, experts::Modality m);

struct ExtractionOptions {
  std::string pool;             // output directory (created; other modalities in it are kept)
  int64_t shard_items = 256;    // inputs per shard (fixed: never derived from the number of ranks)
  size_t batch = 8;             // inputs per encode call, counted from each shard's start
  size_t prefetch = 2;          // batches read/preprocessed ahead (pipeline::StreamOptions::queue_depth)
  bool half = true;             // store f16 (else f32)
  bool strict = false;          // an input that fails to decode is fatal (else reported and skipped)
  bool progress = true;         // one stderr line per shard on every rank
};

struct ExtractionSummary {
  int64_t shards = 0, inputs = 0, rows = 0;  // whole pool (rank 0's view after the barrier)
  int64_t embedded_here = 0, reused_here = 0;  // shards this rank embedded / found complete
  std::vector<std::pair<std::string, std::string>> skipped;  // (path, reason), all ranks (rank 0)
  std::string manifest, report;  // files rank 0 wrote
};

// Runs this rank's share; collective (every rank must call it). Throws InputError on bad options,
// on any failing input with `strict`, and when no input at all could be embedded.
ExtractionSummary extract_to_pool(const pipeline::ModelBundle& bundle, experts::Modality m,
                                  const std::vector<ExtractionInput>& inputs, const ExtractionOptions& options,
                                  distributed::DistributedContext& ctx);

}  // namespace omnibind::training
