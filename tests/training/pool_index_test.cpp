// `omnibind index create DIR --from-pool POOL --expert E --type IVF..,PQ.. --train-sample N`: an index
// built from an embedding pool (as a distributed `embed --pool` writes it) with bounded memory — trained
// on a seeded sample, filled chunk by chunk in one transaction (docs/SCALING.md "The index at scale").
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "omnibind/training/embedding_pool.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDim = 32, kImages = 3000, kTexts = 1200, kClasses = 20;

// Clustered unit rows (20 classes) for an expert E over image and text, f16; image rows carry labels.
void write_pool(const fs::path& dir) {
  PoolManifest m;
  m.experts = {{"E", {"image", "text"}, kDim}, {"A", {"audio", "text"}, 8}};
  m.backbone = "E";
  for (int64_t c = 0; c < kClasses; ++c) m.classes.push_back("class" + std::to_string(c));
  at::Generator g = at::detail::createCPUGenerator(11);
  at::Tensor centres = at::randn({kClasses, kDim}, g);
  centres = centres / centres.norm(2, 1, true);
  PoolWriter w(dir, m, /*shard_rows=*/1000);  // several pool shards per modality
  w.set_half(true);
  for (const auto& [modality, n] : std::vector<std::pair<std::string, int64_t>>{{"image", kImages}, {"text", kTexts}}) {
    at::Tensor labels = at::randint(kClasses, {n}, g, at::kLong);
    at::Tensor x = centres.index_select(0, labels) + 0.35 * at::randn({n, kDim}, g);
    std::map<std::string, at::Tensor> rows{{"E", x / x.norm(2, 1, true)}};
    if (modality == "text") {
      at::Tensor a = at::randn({n, 8}, g);
      rows["A"] = a / a.norm(2, 1, true);
    }
    std::map<std::string, at::Tensor> cols;
    if (modality == "image") cols["label"] = labels;
    w.add(modality, rows, cols);
  }
  w.finish();
}

nlohmann::json create(const std::vector<std::string>& extra) {
  std::vector<std::string> args{"index", "create"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--json");
  auto r = testkit::run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

std::vector<int64_t> neighbours(const std::string& index, int64_t id, int k) {
  auto r = testkit::run_cli({"search", index, "--id", std::to_string(id), "--k", std::to_string(k), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<int64_t> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line)["id"].get<int64_t>());
  return out;
}

TEST(PoolIndex, IvfPqFromAPoolRecallsTheExactNeighbours) {
  const fs::path dir = testkit::make_temp_dir("pool_index");
  write_pool(dir / "pool");
  const std::string pool = (dir / "pool").string(), flat = (dir / "flat").string(), ivf = (dir / "ivf").string();
  // Chunks of 700 rows over 3000 + 1200 pool rows; training on a 1500-row sample.
  auto j = create({ivf, "--from-pool", pool, "--expert", "E", "--type", "IVF16,PQ16", "--nprobe", "4", "--train-sample", "1500",
                   "--chunk-rows", "700", "--threads", "1"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["added"], kImages + kTexts);
  EXPECT_EQ(j["first_id"], 0);
  EXPECT_EQ(j["trained_on"], 1500);
  EXPECT_EQ(j["per_modality"]["image"], kImages);
  EXPECT_EQ(j["per_modality"]["text"], kTexts);
  EXPECT_EQ(j["index"]["dim"], kDim);
  EXPECT_EQ(j["index"]["count"], kImages + kTexts);
  // Rows held at once: the training sample or one chunk, never the pool.
  EXPECT_EQ(j["max_rows_in_memory"], 1500);
  auto f = create({flat, "--from-pool", pool, "--expert", "E", "--chunk-rows", "700", "--threads", "1"});
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f["trained_on"], 0);  // Flat needs no training
  EXPECT_EQ(f["max_rows_in_memory"], 700);

  // The library's recall@10 against exact search (the catalog's vectors, streamed) after the build.
  const double recall = j["index"]["recall_at_10"].get<double>();
  EXPECT_GE(recall, 0.6) << "IVF16,PQ16 with nprobe 4 on clustered rows";
  EXPECT_LT(recall, 1.0 + 1e-9);

  // Independent ground truth from the pool itself: ids are pool rows in modality order (image, text).
  auto p = EmbeddingPool::open(pool);
  at::Tensor all = at::cat({p.embeddings("image", "E", 0, kImages), p.embeddings("text", "E", 0, kTexts)});
  all = all / all.norm(2, 1, true);
  int64_t hits = 0, flat_exact = 0, total = 0;
  for (int64_t q : {5, 777, 2999, 3000, 4100}) {
    at::Tensor scores = all.matmul(all[q]);
    at::Tensor top = std::get<1>(scores.topk(10));
    std::set<int64_t> truth;
    for (int64_t i = 0; i < 10; ++i) truth.insert(top[i].item<int64_t>());
    auto exact = neighbours(flat, q, 10);
    auto approx = neighbours(ivf, q, 10);
    ASSERT_EQ(exact.size(), 10u);
    ASSERT_EQ(approx.size(), 10u);
    for (auto id : exact) flat_exact += truth.count(id);
    for (auto id : approx) hits += truth.count(id);
    total += 10;
  }
  // Flat: the exact neighbours (ties between f16-rounded rows aside).
  EXPECT_GE(flat_exact, total - 2);
  EXPECT_GE(double(hits) / total, 0.5);

  // Labels and pool rows travel with the items.
  auto info = testkit::run_cli({"index", "info", ivf, "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto in = nlohmann::json::parse(info.out);
  EXPECT_EQ(in["per_modality"]["image"], kImages);
  auto lab = p.column("image", "label").value();
  auto r = testkit::run_cli({"search", ivf, "--id", "9", "--k", "1", "--where", "label=class" + std::to_string(lab[9].item<int64_t>()),
                             "--where", "pool_row=9", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out.substr(0, r.out.find('\n')))["id"], 9);
}

TEST(PoolIndex, OnlyTheGivenModalityAndAllOrNothing) {
  const fs::path dir = testkit::make_temp_dir("pool_index_mod");
  write_pool(dir / "pool");
  const std::string pool = (dir / "pool").string();
  auto j = create({(dir / "t").string(), "--from-pool", pool, "--expert", "E", "--modality", "text", "--type", "IVF8,Flat",
                   "--train-sample", "400", "--threads", "1"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["added"], kTexts);
  EXPECT_EQ(j["per_modality"].size(), 1u);
  EXPECT_EQ(j["trained_on"], 400);
  // A second expert of the pool: its own dimension.
  auto a = create({(dir / "a").string(), "--from-pool", pool, "--expert", "A", "--threads", "1"});
  ASSERT_FALSE(a.is_null());
  EXPECT_EQ(a["index"]["dim"], 8);
  EXPECT_EQ(a["added"], kTexts);
}

TEST(PoolIndex, BadInputIsOneLineExit2AndLeavesNoIndex) {
  const fs::path dir = testkit::make_temp_dir("pool_index_bad");
  write_pool(dir / "pool");
  const std::string pool = (dir / "pool").string(), out = (dir / "idx").string();
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "NOPE"}, out, "NOPE");
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool}, out, "--expert");
  testkit::expect_exit2({"index", "create", out, "--from-pool", (dir / "missing").string(), "--expert", "E"}, out, "missing");
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "E", "--type", "IVF16,PQ5"}, out, "IVF16,PQ5");
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "E", "--modality", "point"}, out, "point");
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "E", "--dim", "64"}, out, "--dim");
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "E", "--train-sample", "0"}, out, "--train-sample");
  // FAISS refuses to train 4096 lists on 100 rows: one line, and the half-made index is removed.
  testkit::expect_exit2({"index", "create", out, "--from-pool", pool, "--expert", "E", "--type", "IVF4096,Flat", "--train-sample",
                         "100", "--threads", "1"},
                        out, "could not be trained");
  EXPECT_FALSE(fs::exists(out));
  // An existing index is never overwritten.
  ASSERT_EQ(testkit::run_cli({"index", "create", out, "--dim", "32"}).exit_code, 0);
  auto r = testkit::run_cli({"index", "create", out, "--from-pool", pool, "--expert", "E"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already holds an index"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(fs::path(out) / "catalog.sqlite"));
}

}  // namespace
}  // namespace omnibind::training
