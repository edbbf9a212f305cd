// The evaluation table: one row per representation (each single expert in its raw space, uniform routing,
// learned routing, ablation variants), one column group per task: zero-shot classification per modality
// (top-1/top-5, or mAP for multi-label sets) and retrieval R@1/R@5/R@10 per direction of every modality
// pair with true tuples. Rendered as Markdown and JSON (atomic writes).
//
// Composite metric (one number per row, for comparisons): the mean over ALL tasks of the table of each
// task's headline value -- zero-shot top-1 (mAP when multi-label) and, per retrieval direction, the mean of
// R@1, R@5 and R@10 -- with tasks a row does not cover counted as 0. `covered_mean` averages over the
// row's covered tasks only (a single expert's quality where it applies).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "omnibind/evaluation/metrics.h"

namespace omnibind::evaluation {

struct EvalTask {
  enum class Kind { ZeroShot, MultiLabel, Retrieval };
  Kind kind = Kind::ZeroShot;
  std::string modality;       // zero-shot: the classified modality; retrieval: the query modality
  std::string gallery;        // retrieval: the gallery modality
  std::string key() const;    // "zero-shot/audio", "mAP/audio", "audio->point"
};

struct EvalRow {
  std::string name;  // "CLAP (raw)", "uniform routing", "learned routing", ...
  std::string kind;  // "expert" | "uniform" | "learned" | "ablation"
  std::map<std::string, ZeroShotResult> zero_shot;  // task key -> result
  std::map<std::string, double> map;                // task key -> mAP
  std::map<std::string, RecallResult> retrieval;    // task key -> result
  bool covers(const EvalTask& task) const;
  double headline(const EvalTask& task) const;      // 0 when not covered
};

struct EvalTable {
  std::string title;
  std::vector<EvalTask> tasks;
  std::vector<EvalRow> rows;
  std::vector<std::string> notes;  // printed under the table

  double composite(const EvalRow& row) const;
  double covered_mean(const EvalRow& row) const;
  const EvalRow* find(const std::string& name) const;
  std::string to_markdown() const;
  std::string to_json() const;  // pretty, stable key order
};

// Writes whichever paths are non-empty, each atomically.
void write_eval_table(const EvalTable& table, const std::string& json_path, const std::string& markdown_path);

}  // namespace omnibind::evaluation
