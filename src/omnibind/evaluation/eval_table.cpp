#include "omnibind/evaluation/eval_table.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"

namespace omnibind::evaluation {

std::string EvalTask::key() const {
  switch (kind) {
    case Kind::ZeroShot: return "zero-shot/" + modality;
    case Kind::MultiLabel: return "mAP/" + modality;
    case Kind::Retrieval: return modality + "->" + gallery;
  }
  return modality;
}

bool EvalRow::covers(const EvalTask& task) const {
  const std::string k = task.key();
  switch (task.kind) {
    case EvalTask::Kind::ZeroShot: return zero_shot.count(k) != 0;
    case EvalTask::Kind::MultiLabel: return map.count(k) != 0;
    case EvalTask::Kind::Retrieval: return retrieval.count(k) != 0;
  }
  return false;
}

double EvalRow::headline(const EvalTask& task) const {
  if (!covers(task)) return 0.0;
  const std::string k = task.key();
  switch (task.kind) {
    case EvalTask::Kind::ZeroShot: return zero_shot.at(k).top1;
    case EvalTask::Kind::MultiLabel: return map.at(k);
    case EvalTask::Kind::Retrieval: {
      const RecallResult& r = retrieval.at(k);
      return (r.r1 + r.r5 + r.r10) / 3.0;
    }
  }
  return 0.0;
}

double EvalTable::composite(const EvalRow& row) const {
  if (tasks.empty()) return 0.0;
  double s = 0;
  for (auto& t : tasks) s += row.headline(t);
  return s / double(tasks.size());
}

double EvalTable::covered_mean(const EvalRow& row) const {
  double s = 0;
  int n = 0;
  for (auto& t : tasks)
    if (row.covers(t)) s += row.headline(t), ++n;
  return n ? s / n : 0.0;
}

const EvalRow* EvalTable::find(const std::string& name) const {
  for (auto& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

namespace {

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100.0 * v);
  return buf;
}

std::string cell(const EvalRow& row, const EvalTask& t) {
  if (!row.covers(t)) return "-";
  const std::string k = t.key();
  switch (t.kind) {
    case EvalTask::Kind::ZeroShot: return pct(row.zero_shot.at(k).top1) + " / " + pct(row.zero_shot.at(k).top5);
    case EvalTask::Kind::MultiLabel: return pct(row.map.at(k));
    case EvalTask::Kind::Retrieval: {
      const RecallResult& r = row.retrieval.at(k);
      return pct(r.r1) + " / " + pct(r.r5) + " / " + pct(r.r10);
    }
  }
  return "-";
}

std::string header(const EvalTask& t) {
  switch (t.kind) {
    case EvalTask::Kind::ZeroShot: return t.modality + " zero-shot top-1 / top-5";
    case EvalTask::Kind::MultiLabel: return t.modality + " zero-shot mAP";
    case EvalTask::Kind::Retrieval: return t.modality + "→" + t.gallery + " R@1 / R@5 / R@10";
  }
  return t.key();
}

}  // namespace

std::string EvalTable::to_markdown() const {
  std::string md;
  if (!title.empty()) md += "### " + title + "\n\n";
  md += "| representation |";
  for (auto& t : tasks) md += " " + header(t) + " |";
  md += " composite | covered mean |\n|---|";
  for (size_t i = 0; i < tasks.size(); ++i) md += "---|";
  md += "---|---|\n";
  for (auto& r : rows) {
    md += "| " + r.name + " |";
    for (auto& t : tasks) md += " " + cell(r, t) + " |";
    md += " " + pct(composite(r)) + " | " + pct(covered_mean(r)) + " |\n";
  }
  md += "\nValues in %. Composite: mean over all tasks of zero-shot top-1 (mAP) and retrieval mean(R@1, R@5, R@10), "
        "uncovered tasks counted as 0; covered mean: the same over the tasks the row covers.\n";
  for (auto& n : notes) md += "\n" + n + "\n";
  return md;
}

std::string EvalTable::to_json() const {
  nlohmann::ordered_json j;
  j["title"] = title;
  nlohmann::ordered_json tj = nlohmann::ordered_json::array();
  for (auto& t : tasks) {
    nlohmann::ordered_json o;
    o["key"] = t.key();
    o["kind"] = t.kind == EvalTask::Kind::Retrieval ? "retrieval" : t.kind == EvalTask::Kind::MultiLabel ? "mAP" : "zero-shot";
    o["modality"] = t.modality;
    if (t.kind == EvalTask::Kind::Retrieval) o["gallery"] = t.gallery;
    tj.push_back(o);
  }
  j["tasks"] = tj;
  nlohmann::ordered_json rj = nlohmann::ordered_json::array();
  for (auto& r : rows) {
    nlohmann::ordered_json o;
    o["name"] = r.name;
    o["kind"] = r.kind;
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (auto& t : tasks) {
      if (!r.covers(t)) continue;
      const std::string k = t.key();
      if (t.kind == EvalTask::Kind::ZeroShot)
        m[k] = {{"top1", r.zero_shot.at(k).top1}, {"top5", r.zero_shot.at(k).top5}, {"queries", r.zero_shot.at(k).queries}};
      else if (t.kind == EvalTask::Kind::MultiLabel)
        m[k] = {{"mAP", r.map.at(k)}};
      else
        m[k] = {{"R@1", r.retrieval.at(k).r1}, {"R@5", r.retrieval.at(k).r5}, {"R@10", r.retrieval.at(k).r10},
                {"queries", r.retrieval.at(k).queries}};
    }
    o["metrics"] = m;
    o["composite"] = composite(r);
    o["covered_mean"] = covered_mean(r);
    rj.push_back(o);
  }
  j["rows"] = rj;
  j["notes"] = notes;
  return j.dump(2) + "\n";
}

void write_eval_table(const EvalTable& table, const std::string& json_path, const std::string& markdown_path) {
  if (!json_path.empty()) write_bytes_atomically(json_path, table.to_json());
  if (!markdown_path.empty()) write_bytes_atomically(markdown_path, table.to_markdown());
}

}  // namespace omnibind::evaluation
