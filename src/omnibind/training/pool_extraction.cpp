#include "omnibind/training/pool_extraction.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/input_files.h"
#include "omnibind/pipeline/bundle_stream.h"
#include "omnibind/pipeline/file_digest.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using experts::Modality;

bool parse_int64(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used != s.size()) return false;
    out = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

int64_t source_id(const std::string& s) {
  if (s.empty() || s == "-1") return -1;
  if (s == "audio" || s == "0") return 0;
  if (s == "image" || s == "1") return 1;
  if (s == "point" || s == "2") return 2;
  return -2;
}

std::string shard_name(const std::string& modality, int64_t k, const char* ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05lld", static_cast<long long>(k));
  return modality + buf + ext;
}

json read_json(const fs::path& p) {
  try {
    return json::parse(read_file_bytes(p.string()));
  } catch (const json::exception& e) {
    throw InputError(p.string() + ": invalid JSON (" + std::string(e.what()) + ")");
  }
}

// Labels -> ids: integers as given, names by their index in `classes` (existing ones first, new ones
// appended in order of first appearance in the list).
std::vector<int64_t> label_ids(const std::vector<ExtractionInput>& inputs, std::vector<std::string>& classes) {
  std::vector<int64_t> ids;
  ids.reserve(inputs.size());
  for (const auto& in : inputs) {
    int64_t v = -1;
    if (in.label.empty()) {
      ids.push_back(-1);
    } else if (parse_int64(in.label, v)) {
      require(v >= -1, in.path + ": label " + in.label + " must be a class id >= 0 (or -1 unknown)");
      ids.push_back(v);
    } else {
      auto it = std::find(classes.begin(), classes.end(), in.label);
      if (it == classes.end()) {
        classes.push_back(in.label);
        it = classes.end() - 1;
      }
      ids.push_back(it - classes.begin());
    }
  }
  return ids;
}

struct Sidecar {
  std::string inputs, file, sha256;
  int64_t items = 0, rows = 0, bytes = 0;
  json skipped = json::array();
};

// The sidecar of shard k when it is complete: fingerprint matches and the file (if any) has the recorded
// size and (`hash`) still hashes to the recorded SHA-256.
std::optional<Sidecar> complete_shard(const fs::path& pool, const std::string& modality, int64_t k, const std::string& fingerprint,
                                      bool hash = true) {
  const fs::path side = pool / shard_name(modality, k, ".json");
  std::error_code ec;
  if (!fs::is_regular_file(side, ec)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_file_bytes(side.string()));
    Sidecar s;
    s.inputs = j.at("inputs").get<std::string>();
    s.file = j.at("file").get<std::string>();
    s.sha256 = j.at("sha256").get<std::string>();
    s.items = j.at("items").get<int64_t>();
    s.rows = j.at("rows").get<int64_t>();
    s.bytes = j.at("bytes").get<int64_t>();
    s.skipped = j.at("skipped");
    if (s.inputs != fingerprint) return std::nullopt;
    if (s.rows == 0) return s;
    if (s.file.empty() || !fs::is_regular_file(pool / s.file, ec)) return std::nullopt;
    if (static_cast<int64_t>(fs::file_size(pool / s.file)) != s.bytes) return std::nullopt;
    if (hash && pipeline::sha256_file((pool / s.file).string()) != s.sha256) return std::nullopt;
    return s;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable / partial: redo the shard
  }
}

struct ShardRows {
  std::map<std::string, std::vector<at::Tensor>> parts;  // expert -> batches
  std::vector<size_t> kept;                               // input indices embedded, in order
  std::vector<std::pair<std::string, std::string>> bad;   // (path, reason), in input order
};

std::string a_or_an(const std::string& w) { return (w == "audio" || w == "image" ? "an " : "a ") + w; }

// Embeds inputs [begin, end): every input that cannot be opened or decoded is dropped (or fatal with
// strict); the rest are embedded in batches of o.batch counted from the first kept input, exactly as a
// run over the kept inputs alone would batch them.
ShardRows embed_shard(const pipeline::ModelBundle& bundle, Modality m, const std::vector<ExtractionInput>& inputs, size_t begin,
                      size_t end, const ExtractionOptions& o) {
  ShardRows out;
  std::map<size_t, std::string> bad;
  auto reject = [&](size_t i, const std::string& reason) {
    if (o.strict) throw InputError(reason.rfind(inputs[i].path, 0) == 0 ? reason : inputs[i].path + ": " + reason);
    bad[i] = reason;
  };
  std::vector<size_t> todo;
  std::vector<experts::MediaInput> media;
  const std::string want(experts::modality_name(m));
  for (size_t i = begin; i < end; ++i) {
    std::error_code ec;
    if (!fs::is_regular_file(inputs[i].resolved, ec)) {
      reject(i, "no such file");
      continue;
    }
    if (auto kind = pipeline::file_modality(inputs[i].resolved); kind && *kind != m) {
      reject(i, "is " + a_or_an(std::string(experts::modality_name(*kind))) + " file, not " + want);
      continue;
    }
    try {
      media.push_back(experts::media_input_from_file(m, inputs[i].resolved));
      todo.push_back(i);
    } catch (const InputError& e) {
      reject(i, e.what());
    }
  }
  pipeline::StreamOptions so;
  so.batch = o.batch;
  so.queue_depth = o.prefetch;
  so.keep_experts = true;
  pipeline::StreamOptions one = so;
  one.batch = 1;
  one.queue_depth = 0;
  size_t done = 0;  // todo[0, done) embedded; always a multiple of o.batch
  while (done < todo.size()) {
    std::vector<experts::MediaInput> ins(media.begin() + static_cast<std::ptrdiff_t>(done), media.end());
    std::vector<std::string> names;
    for (size_t j = done; j < todo.size(); ++j) names.push_back(inputs[todo[j]].path);
    size_t sunk = 0;
    try {
      pipeline::embed_stream(bundle, m, ins, names, so, [&](pipeline::StreamBatch&& b) {
        for (auto& [n, t] : b.experts) out.parts[n].push_back(o.half ? t.to(at::kHalf) : t.to(at::kFloat).contiguous());
        sunk += static_cast<size_t>(b.unified.size(0));
      });
      done = todo.size();
    } catch (const InputError& e) {
      if (o.strict) throw;
      // The failing batch is the first one not delivered; find its bad inputs one by one.
      const size_t fb = done + sunk, fe = std::min(todo.size(), fb + o.batch);
      std::vector<size_t> failing;
      for (size_t j = fb; j < fe; ++j) {
        try {
          pipeline::embed_all(bundle, m, {media[j]}, {inputs[todo[j]].path}, one);
        } catch (const InputError& single) {
          std::string reason = single.what();
          const std::string& p = inputs[todo[j]].path;
          if (reason.rfind(p + ": ", 0) == 0) reason = reason.substr(p.size() + 2);
          bad[todo[j]] = reason;
          failing.push_back(j);
        }
      }
      if (failing.empty()) throw;  // not attributable to one input: a real error
      for (auto it = failing.rbegin(); it != failing.rend(); ++it) {
        todo.erase(todo.begin() + static_cast<std::ptrdiff_t>(*it));
        media.erase(media.begin() + static_cast<std::ptrdiff_t>(*it));
      }
      done = fb;
    }
  }
  out.kept = todo;
  for (auto& [i, r] : bad) out.bad.emplace_back(inputs[i].path, r);
  return out;
}

}  // namespace

std::vector<ExtractionInput> read_extraction_list(const std::string& list, Modality m) {
  std::vector<ExtractionInput> out;
  std::error_code ec;
  if (fs::is_directory(list, ec)) {
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(list, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec) && experts::has_modality_extension(m, it->path())) found.push_back(it->path().string());
    require(!ec, list + ": cannot read the directory (" + ec.message() + ")");
    std::sort(found.begin(), found.end());
    for (auto& f : found) out.push_back({f, f, "", ""});
    require(!out.empty(), list + ": no " + std::string(experts::modality_name(m)) + " files in the directory");
    return out;
  }
  std::ifstream in(list);
  require(in.good(), list + ": cannot open the input list");
  const fs::path base = fs::path(list).parent_path();
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    size_t start = 0;
    for (;;) {
      const size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    const std::string where = list + ":" + std::to_string(number);
    require(cols.size() <= 3, where + ": expected PATH [TAB LABEL [TAB SOURCE]], got " + std::to_string(cols.size()) + " columns");
    require(!cols[0].empty(), where + ": empty path");
    ExtractionInput e;
    e.path = cols[0];
    e.resolved = fs::path(cols[0]).is_absolute() || base.empty() ? cols[0] : (base / cols[0]).string();
    if (cols.size() > 1) e.label = cols[1];
    if (cols.size() > 2) e.source = cols[2];
    require(source_id(e.source) >= -1, where + ": source '" + e.source + "' must be audio, image or point (or 0, 1, 2, -1)");
    out.push_back(std::move(e));
  }
  require(!out.empty(), list + ": lists no inputs");
  return out;
}

ExtractionSummary extract_to_pool(const pipeline::ModelBundle& bundle, Modality m, const std::vector<ExtractionInput>& inputs,
                                  const ExtractionOptions& o, distributed::DistributedContext& ctx) {
  require(o.shard_items > 0, "--shard-items must be positive");
  require(o.batch > 0, "--batch must be positive");
  require(!inputs.empty(), "no inputs to embed");
  const std::string modality(experts::modality_name(m));
  const fs::path pool = o.pool;
  std::error_code ec;
  fs::create_directories(pool, ec);
  require(fs::is_directory(pool), pool.string() + ": cannot create the pool directory");

  // Everything every rank must agree on comes from the list and the pool as they were at the start.
  json existing;
  if (fs::exists(pool / "manifest.json")) existing = read_json(pool / "manifest.json");
  std::vector<std::string> classes;
  if (existing.is_object() && existing.contains("classes"))
    for (auto& c : existing["classes"]) classes.push_back(c.get<std::string>());
  const std::vector<int64_t> labels = label_ids(inputs, classes);
  const bool has_label = std::any_of(inputs.begin(), inputs.end(), [](auto& i) { return !i.label.empty(); });
  const bool has_source = std::any_of(inputs.begin(), inputs.end(), [](auto& i) { return !i.source.empty(); });

  // Build the experts first: a failure here is the bundle's, never an input's.
  const auto runs = bundle.experts_for(m);
  std::vector<std::pair<std::string, int64_t>> experts;  // binding name -> dim
  for (auto& r : runs)
    for (auto& n : r.names) experts.emplace_back(n, r.expert->dim());

  const int64_t n = static_cast<int64_t>(inputs.size());
  const int64_t n_shards = (n + o.shard_items - 1) / o.shard_items;
  auto fingerprint = [&](int64_t k) {
    json j{{"model", bundle.name()}, {"precision", bundle.precision()}, {"modality", modality},
           {"batch", o.batch},       {"dtype", o.half ? "F16" : "F32"},  {"columns", {has_label, has_source}}};
    json items = json::array();
    for (int64_t i = k * o.shard_items; i < std::min(n, (k + 1) * o.shard_items); ++i) {
      std::error_code e2;
      const auto size = fs::file_size(inputs[i].resolved, e2);
      items.push_back({inputs[i].path, e2 ? -1 : static_cast<int64_t>(size), labels[i], source_id(inputs[i].source)});
    }
    j["items"] = items;
    return pipeline::sha256_hex(j.dump());
  };

  ExtractionSummary summary;
  const auto t_start = std::chrono::steady_clock::now();
  int64_t mine = 0, mine_done = 0;
  for (int64_t k = ctx.rank(); k < n_shards; k += ctx.world_size()) ++mine;
  // One shard: (rows, inputs skipped).
  auto run_shard = [&](int64_t k) -> std::pair<int64_t, int64_t> {
    const std::string fp = fingerprint(k);
    const size_t begin = static_cast<size_t>(k * o.shard_items), end = static_cast<size_t>(std::min(n, (k + 1) * o.shard_items));
    ++mine_done;
    if (auto done = complete_shard(pool, modality, k, fp)) {
      ++summary.reused_here;
      if (o.progress)
        std::fprintf(stderr, "embed: shard %lld of %lld already complete (hash checked), kept [%lld/%lld of this rank]\n",
                     static_cast<long long>(k), static_cast<long long>(n_shards), static_cast<long long>(mine_done),
                     static_cast<long long>(mine));
      return {done->rows, static_cast<int64_t>(done->skipped.size())};
    }
    const auto t0 = std::chrono::steady_clock::now();
    ShardRows rows = embed_shard(bundle, m, inputs, begin, end, o);
    Sidecar s;
    s.inputs = fp;
    s.items = static_cast<int64_t>(end - begin);
    s.rows = static_cast<int64_t>(rows.kept.size());
    for (auto& [p, r] : rows.bad) s.skipped.push_back({{"path", p}, {"reason", r}});
    const fs::path side = pool / shard_name(modality, k, ".json");
    std::error_code e3;
    fs::remove(side, e3);  // a stale sidecar must never vouch for the new file
    if (s.rows > 0) {
      s.file = shard_name(modality, k, ".safetensors");
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      for (auto& [name, dim] : experts) {
        auto& parts = rows.parts[name];
        at::Tensor t = parts.size() == 1 ? parts[0] : at::cat(parts, 0);
        require(t.size(0) == s.rows && t.size(1) == dim, "expert '" + name + "' returned an unexpected shape");
        tensors.emplace_back(name, t.contiguous());
      }
      std::sort(tensors.begin(), tensors.end(), [](auto& a, auto& b) { return a.first < b.first; });
      if (has_label || has_source) {
        std::vector<int64_t> lab, src;
        for (size_t i : rows.kept) {
          lab.push_back(labels[i]);
          src.push_back(source_id(inputs[i].source));
        }
        if (has_label) tensors.emplace_back("label", at::tensor(lab, at::kLong));
        if (has_source) tensors.emplace_back("source", at::tensor(src, at::kLong));
      }
      tensor_io::write_tensors((pool / s.file).string(), tensors);
      s.sha256 = pipeline::sha256_file((pool / s.file).string());
      s.bytes = static_cast<int64_t>(fs::file_size(pool / s.file));
    } else {
      fs::remove(pool / shard_name(modality, k, ".safetensors"), e3);
    }
    json j{{"shard", k}, {"inputs", s.inputs}, {"items", s.items}, {"rows", s.rows}, {"file", s.file}, {"bytes", s.bytes},
           {"sha256", s.sha256}, {"skipped", s.skipped}};
    write_bytes_atomically(side.string(), j.dump(2) + "\n");
    ++summary.embedded_here;
    if (o.progress) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "embed: shard %lld of %lld embedded: %lld rows, %zu skipped, %.1f items/s [%lld/%lld of this rank]\n",
                   static_cast<long long>(k), static_cast<long long>(n_shards), static_cast<long long>(s.rows), rows.bad.size(),
                   secs > 0 ? static_cast<double>(end - begin) / secs : 0.0, static_cast<long long>(mine_done),
                   static_cast<long long>(mine));
    }
    return {s.rows, static_cast<int64_t>(rows.bad.size())};
  };
  // In rounds of one shard per rank, each closed by an all-reduce of what was done: no rank waits for
  // more than one shard of another (the --dist-timeout bound), and rank 0 can print overall progress.
  const int64_t rounds = (n_shards + ctx.world_size() - 1) / ctx.world_size();
  int64_t total_shards = 0, total_rows = 0, total_skipped = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t k = round * ctx.world_size() + ctx.rank();
    std::pair<int64_t, int64_t> got{0, 0};
    if (k < n_shards) got = run_shard(k);
    std::vector<at::Tensor> counts{at::tensor(std::vector<int64_t>{k < n_shards ? 1 : 0, got.first, got.second}, at::kLong)};
    ctx.all_reduce_sum(counts, "exchanging extraction progress (round " + std::to_string(round) + ")");
    total_shards += counts[0][0].item<int64_t>();
    total_rows += counts[0][1].item<int64_t>();
    total_skipped += counts[0][2].item<int64_t>();
    if (o.progress && ctx.distributed() && ctx.is_root())
      std::fprintf(stderr, "embed: overall %lld of %lld shards done: %lld rows, %lld skipped, %.1f s\n",
                   static_cast<long long>(total_shards), static_cast<long long>(n_shards), static_cast<long long>(total_rows),
                   static_cast<long long>(total_skipped),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  }
  ctx.barrier("waiting for every rank's shards");
  if (!ctx.is_root()) return summary;

  // Rank 0: every shard must be complete now (sidecar fingerprint and file size: the ranks hashed
  // their own files, so the pool is not read again here); assemble the manifest and the report.
  json shard_records = json::array(), skipped = json::array(), files = json::array();
  for (int64_t k = 0; k < n_shards; ++k) {
    auto s = complete_shard(pool, modality, k, fingerprint(k), /*hash=*/false);
    require(s.has_value(), (pool / shard_name(modality, k, ".json")).string() + ": shard " + std::to_string(k) +
                               " is missing or does not match its inputs after every rank finished");
    summary.rows += s->rows;
    for (auto& b : s->skipped) {
      skipped.push_back(b);
      summary.skipped.emplace_back(b["path"].get<std::string>(), b["reason"].get<std::string>());
    }
    if (s->rows > 0) files.push_back(s->file);
    shard_records.push_back({{"file", s->file}, {"first", k * o.shard_items}, {"items", s->items}, {"rows", s->rows},
                             {"bytes", s->bytes}, {"sha256", s->sha256}, {"inputs", s->inputs}});
  }
  // Shards of an earlier, longer list are no longer part of the pool.
  for (int64_t k = n_shards;; ++k) {
    const bool side = fs::remove(pool / shard_name(modality, k, ".json"), ec);
    const bool file = fs::remove(pool / shard_name(modality, k, ".safetensors"), ec);
    if (!side && !file) break;
  }
  summary.shards = n_shards;
  summary.inputs = n;
  require(summary.rows > 0, "no input could be embedded (" + std::to_string(skipped.size()) + " skipped, see the report)");

  json j = existing.is_object() ? existing : json::object();
  j["format"] = "omnibind-pool";
  j["version"] = 1;
  json ex = j.contains("experts") && j["experts"].is_array() ? j["experts"] : json::array();
  json merged = json::array();
  for (auto& e : ex) {  // drop this modality from experts that no longer embed it
    const std::string name = e.value("name", "");
    const bool ours = std::any_of(experts.begin(), experts.end(), [&](auto& p) { return p.first == name; });
    if (!ours) {
      json mods = json::array();
      for (auto& mm : e["modalities"])
        if (mm != modality) mods.push_back(mm);
      if (mods.empty()) continue;
      e["modalities"] = mods;
    }
    merged.push_back(e);
  }
  for (auto& [name, dim] : experts) {
    auto it = std::find_if(merged.begin(), merged.end(), [&](const json& e) { return e.value("name", "") == name; });
    if (it == merged.end()) {
      merged.push_back({{"name", name}, {"modalities", json::array({modality})}, {"dim", dim}});
      continue;
    }
    require((*it)["dim"].get<int64_t>() == dim, (pool / "manifest.json").string() + ": expert '" + name + "' has dim " +
                                                    (*it)["dim"].dump() + " in the pool but " + std::to_string(dim) +
                                                    " in the bundle");
    auto& mods = (*it)["modalities"];
    if (std::find(mods.begin(), mods.end(), modality) == mods.end()) mods.push_back(modality);
  }
  j["experts"] = merged;
  if (!classes.empty()) j["classes"] = classes;
  if (!j.contains("modalities")) j["modalities"] = json::object();
  j["modalities"][modality] = {{"shards", files}, {"rows", summary.rows}};
  summary.report = (pool / (modality + "-report.json")).string();
  j["extraction"][modality] = {{"model", bundle.name()},
                               {"precision", bundle.precision()},
                               {"dtype", o.half ? "F16" : "F32"},
                               {"batch", o.batch},
                               {"shard_items", o.shard_items},
                               {"inputs", n},
                               {"rows", summary.rows},
                               {"skipped", skipped.size()},
                               {"report", modality + "-report.json"},
                               {"shards", shard_records}};
  json report{{"modality", modality}, {"model", bundle.name()}, {"inputs", n}, {"rows", summary.rows}, {"skipped", skipped}};
  write_bytes_atomically(summary.report, report.dump(2) + "\n");
  summary.manifest = (pool / "manifest.json").string();
  write_bytes_atomically(summary.manifest, j.dump(2) + "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (o.progress)
    std::fprintf(stderr, "embed: all %lld shards complete: %lld of %lld inputs embedded, %zu skipped, %.1f s\n",
                 static_cast<long long>(n_shards), static_cast<long long>(summary.rows), static_cast<long long>(n),
                 skipped.size(), secs);
  return summary;
}

}  // namespace omnibind::training
