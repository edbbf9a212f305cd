// Search speed on N x D unit vectors (default 1M x 1536, clustered like real embeddings): per FAISS
// type, single-query latency (p50/p99), single-thread-loop QPS and batched QPS through our VectorIndex
// (FAISS + SQLite catalog directory) vs raw FAISS on the same data, same run; recall@10 of each
// approximate type against exact search. Prints one JSON object.
//   bench_search [--n 1000000] [--dim 1536] [--nq 500] [--k 10] [--types "Flat;IVF1024,Flat"]
//                [--nprobe 16] [--chunk 250000] [--threads T] [--dir /tmp/x]
// Memory: N*D*4 bytes for the data plus about as much for each index (6 GB each at 1M x 1536).
// IVF types train on the first chunk on both sides (ours trains on its first add).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/common/process_memory.h"
#include "omnibind/retrieval/vector_index.h"

using namespace omnibind;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Clustered unit vectors: 512 random centres, each row = centre + noise (cosine to its centre ~0.7).
std::vector<float> make_data(int64_t n, int64_t d, uint64_t seed, const at::Tensor& centres) {
  std::vector<float> out(static_cast<size_t>(n * d));
  at::Generator g = at::detail::createCPUGenerator(seed);
  const int64_t step = 65536;
  for (int64_t b = 0; b < n; b += step) {
    const int64_t m = std::min(step, n - b);
    at::Tensor which = at::randint(centres.size(0), {m}, g);
    at::Tensor x = centres.index_select(0, which) + at::randn({m, d}, g) * (1.0 / std::sqrt(double(d)));
    x = x / x.norm(2, 1, true);
    std::memcpy(out.data() + b * d, x.contiguous().data_ptr<float>(), sizeof(float) * m * d);
  }
  return out;
}

struct Timing {
  double p50_ms = 0, p99_ms = 0, loop_qps = 0, batch_qps = 0;
};

template <class One, class Batch>
Timing time_search(int64_t nq, One one, Batch batch) {
  std::vector<double> lat;
  lat.reserve(nq);
  auto t0 = Clock::now();
  for (int64_t i = 0; i < nq; ++i) {
    auto t = Clock::now();
    one(i);
    lat.push_back(since(t) * 1e3);
  }
  Timing r;
  r.loop_qps = nq / since(t0);
  std::sort(lat.begin(), lat.end());
  r.p50_ms = lat[lat.size() / 2];
  r.p99_ms = lat[std::min(lat.size() - 1, static_cast<size_t>(lat.size() * 0.99))];
  auto t1 = Clock::now();
  batch();
  r.batch_qps = nq / since(t1);
  return r;
}

double recall(const std::vector<int64_t>& truth, const std::vector<int64_t>& got, int64_t nq, int64_t k) {
  int64_t hit = 0;
  for (int64_t q = 0; q < nq; ++q)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) hit += got[q * k + i] >= 0 && got[q * k + i] == truth[q * k + j];
  return double(hit) / double(nq * k);
}

nlohmann::json timing_json(const Timing& t) {
  return {{"p50_ms", t.p50_ms}, {"p99_ms", t.p99_ms}, {"loop_qps", t.loop_qps}, {"batch_qps", t.batch_qps}};
}

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int64_t n = 1000000, d = 1536, nq = 500, k = 10, chunk = 250000;
  int nprobe = 16, threads = 0;
  std::string types = "Flat;IVF1024,Flat";
  std::string dir = (fs::temp_directory_path() / ("omnibind_bench_search_" + std::to_string(::getpid()))).string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--n") n = std::stoll(v);
    else if (a == "--dim") d = std::stoll(v);
    else if (a == "--nq") nq = std::stoll(v);
    else if (a == "--k") k = std::stoll(v);
    else if (a == "--types") types = v;
    else if (a == "--nprobe") nprobe = std::stoi(v);
    else if (a == "--chunk") chunk = std::stoll(v);
    else if (a == "--threads") threads = std::stoi(v);
    else if (a == "--dir") dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  at::set_num_threads(std::max(1, threads > 0 ? threads : omp_get_max_threads()));
  nlohmann::ordered_json out = {{"n", n}, {"dim", d}, {"nq", nq}, {"k", k}, {"nprobe", nprobe},
                                {"threads", omp_get_max_threads()}, {"chunk", chunk}};
  auto t0 = Clock::now();
  at::Generator g = at::detail::createCPUGenerator(1);
  at::Tensor centres = at::randn({512, d}, g);
  centres = centres / centres.norm(2, 1, true);
  std::vector<float> data = make_data(n, d, 2, centres);
  std::vector<float> queries = make_data(nq, d, 3, centres);
  out["generate_s"] = since(t0);
  std::fprintf(stderr, "bench_search: %lld x %lld generated in %.1f s\n", (long long)n, (long long)d, since(t0));

  std::vector<int64_t> exact;  // ground truth from raw FAISS Flat
  std::stringstream ts(types);
  std::string type;
  while (std::getline(ts, type, ';')) {
    nlohmann::ordered_json r;
    const int64_t first = std::min(chunk, n);
    // Raw FAISS.
    {
      std::unique_ptr<faiss::Index> idx(faiss::index_factory(static_cast<int>(d), type.c_str(), faiss::METRIC_INNER_PRODUCT));
      auto tb = Clock::now();
      if (!idx->is_trained) idx->train(first, data.data());
      idx->add(n, data.data());
      r["faiss"]["build_s"] = since(tb);
      if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(idx.get())) ivf->nprobe = nprobe;
      std::vector<float> dist(nq * k);
      std::vector<faiss::Index::idx_t> labels(nq * k);
      Timing t = time_search(
          nq, [&](int64_t i) { idx->search(1, queries.data() + i * d, k, dist.data() + i * k, labels.data() + i * k); },
          [&] { idx->search(nq, queries.data(), k, dist.data(), labels.data()); });
      r["faiss"].update(timing_json(t));
      std::vector<int64_t> got(labels.begin(), labels.end());
      if (exact.empty() && type == "Flat") exact = got;
      if (!exact.empty()) r["faiss"]["recall_at_k"] = recall(exact, got, nq, k);
      std::fprintf(stderr, "bench_search: faiss %s done\n", type.c_str());
    }
    // Ours: a VectorIndex directory, added in chunks (each add is one atomic generation).
    {
      fs::remove_all(dir);
      retrieval::CreateOptions co;
      co.dim = d;
      co.type = type;
      co.nprobe = nprobe;
      retrieval::VectorIndex::create(dir, co);
      auto idx = retrieval::VectorIndex::open(dir, retrieval::VectorIndex::Mode::ReadWrite);
      auto tb = Clock::now();
      for (int64_t b = 0; b < n; b += chunk) {
        const int64_t m = std::min(chunk, n - b);
        std::vector<retrieval::ItemRecord> items(m);
        for (auto& it : items) it.modality = "image";
        idx->add(items, data.data() + b * d, m, /*measure_recall=*/false);
      }
      r["ours"]["build_s"] = since(tb);
      std::vector<int64_t> got(nq * k, -1);
      Timing t = time_search(
          nq,
          [&](int64_t i) {
            auto hits = idx->search(queries.data() + i * d, k);
            for (size_t j = 0; j < hits.size(); ++j) got[i * k + j] = hits[j].id;
          },
          [&] { idx->search_batch(queries.data(), nq, k); });
      r["ours"].update(timing_json(t));
      if (!exact.empty()) r["ours"]["recall_at_k"] = recall(exact, got, nq, k);
      idx.reset();
      fs::remove_all(dir);
      std::fprintf(stderr, "bench_search: ours %s done\n", type.c_str());
    }
    r["ours_over_faiss_loop_qps"] = r["ours"]["loop_qps"].get<double>() / r["faiss"]["loop_qps"].get<double>();
    r["ours_over_faiss_batch_qps"] = r["ours"]["batch_qps"].get<double>() / r["faiss"]["batch_qps"].get<double>();
    out["types"][type] = r;
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
