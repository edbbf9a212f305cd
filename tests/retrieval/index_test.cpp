// The persistent index: create/add/remove/reopen, ids, types, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "omnibind/common/error.h"
#include "omnibind/retrieval/vector_index.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using namespace omnibind::retrieval;

namespace {
// n unit-ish vectors around `clusters` random centres; labels[i] = cluster of row i.
std::vector<float> clustered(int64_t n, int64_t dim, int clusters, std::vector<int>& labels, uint32_t seed,
                             float spread = 0.3f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> centres(clusters * dim);
  for (auto& c : centres) c = g(rng);
  std::vector<float> rows(n * dim);
  labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int>(i % clusters);
    for (int64_t j = 0; j < dim; ++j) rows[i * dim + j] = centres[labels[i] * dim + j] + spread * g(rng);
  }
  return rows;
}

std::vector<ItemRecord> records(int64_t n, const std::string& modality, const std::vector<int>* labels = nullptr) {
  std::vector<ItemRecord> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i].modality = modality;
    out[i].source = "item" + std::to_string(i);
    if (labels) out[i].labels = {"c" + std::to_string((*labels)[i])};
    out[i].metadata = "{\"row\":" + std::to_string(i) + ",\"split\":\"" + (i % 2 ? "odd" : "even") + "\"}";
  }
  return out;
}

std::string new_index(const std::string& type, int64_t dim) {
  std::string dir = testkit::make_temp_dir("idx") + "/index";
  CreateOptions o;
  o.dim = dim;
  o.type = type;
  VectorIndex::create(dir, o);
  return dir;
}
}  // namespace

TEST(VectorIndex, AddSearchReopenKeepsIds) {
  std::vector<int> labels;
  auto rows = clustered(300, 32, 5, labels, 1);
  auto dir = new_index("Flat", 32);
  std::vector<int64_t> ids;
  {
    auto idx = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
    ids = idx->add(records(300, "audio", &labels), rows.data(), 300);
    ASSERT_EQ(ids.size(), 300u);
    EXPECT_EQ(ids.front(), 0);
    EXPECT_EQ(ids.back(), 299);
    auto hits = idx->search(rows.data() + 17 * 32, 5);
    ASSERT_EQ(hits.size(), 5u);
    EXPECT_EQ(hits[0].id, 17);
    double norm = 0;  // stored rows are normalised, the query is not: score = |query|
    for (int j = 0; j < 32; ++j) norm += double(rows[17 * 32 + j]) * rows[17 * 32 + j];
    EXPECT_NEAR(hits[0].score, std::sqrt(norm), 1e-4);
  }
  {
    auto idx = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
    EXPECT_EQ(idx->size(), 300);
    auto hits = idx->search(rows.data() + 123 * 32, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id, 123);
    auto rec = idx->item(123);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->source, "item123");
    EXPECT_EQ(rec->labels, std::vector<std::string>{"c" + std::to_string(labels[123])});
    // removal: ids are never reused
    EXPECT_EQ(idx->remove({123, 124, 99999}), 2u);
    EXPECT_FALSE(idx->item(123));
    auto more = idx->add(records(1, "image"), rows.data(), 1);
    EXPECT_EQ(more[0], 300);
  }
  auto ro = VectorIndex::open(dir, VectorIndex::Mode::ReadOnly);
  EXPECT_EQ(ro->size(), 299);
  auto info = ro->info();
  EXPECT_EQ(info.per_modality["audio"], 298);
  EXPECT_EQ(info.per_modality["image"], 1);
  EXPECT_TRUE(info.exact);
  EXPECT_THROW(ro->add(records(1, "audio"), rows.data(), 1), InputError);
  // only the current generation's file is left
  int faiss_files = 0;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".faiss") ++faiss_files;
  EXPECT_EQ(faiss_files, 1);
}

TEST(VectorIndex, FiltersByModalityLabelAndMetadata) {
  std::vector<int> labels;
  auto rows = clustered(200, 16, 4, labels, 2);
  auto dir = new_index("Flat", 16);
  auto idx = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
  auto recs = records(200, "audio", &labels);
  for (int i = 0; i < 200; i += 3) recs[i].modality = "point";
  idx->add(recs, rows.data(), 200);
  Filter f;
  f.modalities = {"point"};
  auto hits = idx->search(rows.data(), 10, f);
  ASSERT_EQ(hits.size(), 10u);
  for (auto& h : hits) EXPECT_EQ(h.id % 3, 0);
  Filter g;
  g.where = {{"split", "odd"}, {"label", "c1"}};
  hits = idx->search(rows.data(), 20, g);
  ASSERT_EQ(hits.size(), 20u);
  for (auto& h : hits) {
    EXPECT_EQ(h.id % 2, 1);
    EXPECT_EQ(labels[h.id], 1);
  }
  Filter none;
  none.where = {{"split", "nope"}};
  EXPECT_TRUE(idx->search(rows.data(), 5, none).empty());
}

// Approximate and compressed types keep recall@10 against exact search high on clustered data.
TEST(VectorIndex, FactoryTypesReachRecall) {
  std::vector<int> labels;
  auto rows = clustered(2000, 32, 20, labels, 3, 0.5f);
  struct Case { const char* type; double min_recall; };
  for (Case c : {Case{"SQfp16", 0.97}, Case{"SQ8", 0.9}, Case{"HNSW16", 0.9}, Case{"IVF16,Flat", 0.9},
                 Case{"IVF16,PQ8x4", 0.25}}) {
    SCOPED_TRACE(c.type);
    auto dir = new_index(c.type, 32);
    auto idx = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
    idx->add(records(2000, "image", &labels), rows.data(), 2000);
    auto info = idx->info();
    ASSERT_TRUE(info.recall_at_10.has_value());
    EXPECT_GE(*info.recall_at_10, c.min_recall);
    EXPECT_LE(*info.recall_at_10, 1.0);
    // removal works for every type (HNSW is rebuilt from the catalog)
    EXPECT_EQ(idx->remove({5, 6}), 2u);
    EXPECT_EQ(idx->size(), 1998);
    for (auto& h : idx->search(rows.data() + 5 * 32, 10)) EXPECT_NE(h.id, 5);
    idx.reset();
    auto again = VectorIndex::open(dir, VectorIndex::Mode::ReadOnly);
    EXPECT_EQ(again->size(), 1998);
    EXPECT_EQ(again->info().type, c.type);
  }
}

TEST(VectorIndex, RebuildsAMissingOrDamagedFaissFile) {
  std::vector<int> labels;
  auto rows = clustered(50, 8, 2, labels, 4);
  auto dir = new_index("Flat", 8);
  VectorIndex::open(dir, VectorIndex::Mode::ReadWrite)->add(records(50, "text"), rows.data(), 50);
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".faiss") std::ofstream(e.path()) << "garbage";
  auto idx = VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
  EXPECT_EQ(idx->size(), 50);
  EXPECT_EQ(idx->search(rows.data() + 8 * 7, 1).at(0).id, 7);
}

TEST(VectorIndex, BadInputIsRejectedWithOneLine) {
  auto tmp = testkit::make_temp_dir("idxbad");
  CreateOptions o;
  o.dim = 8;
  o.type = "NotAType";
  EXPECT_THROW(VectorIndex::create(tmp + "/a", o), InputError);
  EXPECT_FALSE(fs::exists(tmp + "/a/catalog.sqlite"));
  o.type = "IVF4,PQ3";  // 8 is not a multiple of 3
  EXPECT_THROW(VectorIndex::create(tmp + "/b", o), InputError);
  o.type = "Flat";
  o.dim = 0;
  EXPECT_THROW(VectorIndex::create(tmp + "/c", o), InputError);
  o.dim = 8;
  VectorIndex::create(tmp + "/d", o);
  EXPECT_THROW(VectorIndex::create(tmp + "/d", o), InputError);
  EXPECT_THROW(VectorIndex::open(tmp + "/nothing", VectorIndex::Mode::ReadOnly), InputError);

  auto idx = VectorIndex::open(tmp + "/d", VectorIndex::Mode::ReadWrite);
  EXPECT_THROW(VectorIndex::open(tmp + "/d", VectorIndex::Mode::ReadWrite), InputError);  // one writer
  std::vector<float> zeros(16, 0.f);
  EXPECT_THROW(idx->add(records(2, "audio"), zeros.data(), 2), InputError);
  std::vector<float> nan(8, std::nanf(""));
  EXPECT_THROW(idx->add(records(1, "audio"), nan.data(), 1), InputError);
  EXPECT_EQ(idx->size(), 0);

  // IVF needs enough rows on its first add; the failure commits nothing
  VectorIndex::create(tmp + "/e", CreateOptions{8, "IVF64,Flat", 4, 16});
  auto ivf = VectorIndex::open(tmp + "/e", VectorIndex::Mode::ReadWrite);
  std::vector<int> labels;
  auto rows = clustered(10, 8, 2, labels, 5);
  try {
    ivf->add(records(10, "audio"), rows.data(), 10);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("IVF64,Flat"), std::string::npos);
  }
  EXPECT_EQ(ivf->size(), 0);
}
