// Composition, search through a query embedder, zero-shot classification, and search quality on
// real data (MNIST digits as raw-pixel vectors: neighbours should share the digit).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <map>

#include "hash_expert.h"
#include "omnibind/common/error.h"
#include "omnibind/retrieval/query.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::retrieval;

namespace {
std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string out;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  gzclose(f);
  return out;
}

std::unique_ptr<VectorIndex> fresh(int64_t dim, const std::string& type = "Flat") {
  std::string dir = testkit::make_temp_dir("q") + "/index";
  CreateOptions o;
  o.dim = dim;
  o.type = type;
  VectorIndex::create(dir, o);
  return VectorIndex::open(dir, VectorIndex::Mode::ReadWrite);
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

TEST(Compose, NormalisesEachItemThenTheWeightedSum) {
  std::vector<float> a{3, 0, 0}, b{0, 10, 0};
  auto q = combine({a, b}, {1, 1});
  EXPECT_NEAR(q[0], std::sqrt(0.5f), 1e-6);
  EXPECT_NEAR(q[1], std::sqrt(0.5f), 1e-6);
  q = combine({a, b}, {1, -0.5f});
  EXPECT_NEAR(q[0], 1 / std::sqrt(1.25f), 1e-6);
  EXPECT_NEAR(q[1], -0.5f / std::sqrt(1.25f), 1e-6);
  EXPECT_THROW(combine({a, a}, {1, -1}), InputError);           // cancels out
  EXPECT_THROW(combine({a, {0, 0, 0}}, {1, 1}), InputError);    // zero item
  EXPECT_THROW(combine({a, {1, 2}}, {1, 1}), InputError);       // dim mismatch
  EXPECT_THROW(combine({}, {}), InputError);
}

TEST(Compose, StoredIdsVectorsAndMediaMix) {
  testkit::HashExpert::register_once();
  ExpertQueryEmbedder emb(experts::create_expert("test-hash", {}));
  auto idx = fresh(emb.dim());
  std::vector<std::string> texts = {"a dog barking loudly", "rain falling on a roof", "a cat meowing",
                                    "dog in the rain", "a red car engine"};
  std::vector<float> rows;
  std::vector<ItemRecord> recs;
  for (auto& t : texts) {
    auto v = emb.embed(experts::Modality::Text, experts::MediaInput::from_text(t));
    rows.insert(rows.end(), v.begin(), v.end());
    ItemRecord r;
    r.modality = "text";
    r.source = t;
    recs.push_back(r);
  }
  idx->add(recs, rows.data(), static_cast<int64_t>(texts.size()));
  // text query through the embedder
  auto q = compose_query({QueryItem::text("dog barking")}, *idx, &emb);
  auto res = search_index(*idx, q, 1);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].record.source, "a dog barking loudly");
  // "dog" + "rain" -> the item about both; a stored id composes the same way as its text
  q = compose_query({QueryItem::text("dog"), QueryItem::text("rain", 1.0f)}, *idx, &emb);
  res = search_index(*idx, q, 1);
  EXPECT_EQ(res.at(0).record.source, "dog in the rain");
  // item 3 minus "dog" is closer to the rain item than item 3 alone is
  std::vector<float> v3, v1;
  idx->vector(3, v3);
  idx->vector(1, v1);
  q = compose_query({QueryItem::stored(3), QueryItem::text("dog", -0.8f)}, *idx, &emb);
  EXPECT_GT(dot(q, v1), dot(v3, v1));
  // errors name the item
  EXPECT_THROW(compose_query({QueryItem::stored(42)}, *idx, &emb), InputError);
  EXPECT_THROW(compose_query({QueryItem::text("dog")}, *idx, nullptr), InputError);
  EXPECT_THROW(compose_query({QueryItem::vec({1, 2, 3})}, *idx, &emb), InputError);
  EXPECT_THROW(compose_query({}, *idx, &emb), InputError);
}

TEST(Classify, TopClassPerItemWithTemplates) {
  testkit::HashExpert::register_once();
  ExpertQueryEmbedder emb(experts::create_expert("test-hash", {}));
  auto idx = fresh(emb.dim());
  std::vector<std::pair<std::string, std::string>> items = {
      {"a dog on grass", "dog"}, {"my cat sleeping", "cat"}, {"fast car on road", "car"}, {"dog and ball", "dog"}};
  std::vector<float> rows;
  std::vector<ItemRecord> recs;
  for (auto& [t, l] : items) {
    auto v = emb.embed(experts::Modality::Text, experts::MediaInput::from_text(t));
    rows.insert(rows.end(), v.begin(), v.end());
    ItemRecord r;
    r.modality = "text";
    r.labels = {l};
    recs.push_back(r);
  }
  idx->add(recs, rows.data(), 4);
  auto out = classify_items(*idx, emb, split_list("dog, cat,car"), {"a photo of a {}."});
  ASSERT_EQ(out.size(), 4u);
  for (auto& c : out) {
    EXPECT_EQ(c.top_class, c.labels.at(0)) << c.id;
    EXPECT_EQ(c.class_scores.size(), 3u);
  }
  EXPECT_EQ(fill_template("a photo of a {}.", "dog"), "a photo of a dog.");
  EXPECT_THROW(classify_items(*idx, emb, {}, {}), InputError);
}

// Real structured data: MNIST test digits, 784-d pixel vectors. Cosine k-NN on raw pixels is a
// well-known ~95% classifier, so neighbours found by the index must mostly share the query's digit,
// and IVF must agree with exact search.
TEST(SearchQuality, MnistNeighboursShareTheDigit) {
  OMNIBIND_REQUIRE_SHARED();
  std::string images = gunzip(testkit::shared_path("data/mnist_test/t10k-images-idx3-ubyte.gz"));
  std::string labels = gunzip(testkit::shared_path("data/mnist_test/t10k-labels-idx1-ubyte.gz"));
  ASSERT_EQ(images.size(), 16u + 10000u * 784u);
  ASSERT_EQ(labels.size(), 8u + 10000u);
  const int64_t n = 3000, d = 784;
  std::vector<float> rows(n * d);
  std::vector<ItemRecord> recs(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) rows[i * d + j] = static_cast<unsigned char>(images[16 + i * d + j]) / 255.f;
    recs[i].modality = "image";
    recs[i].labels = {std::to_string(static_cast<int>(labels[8 + i]))};
  }
  for (std::string type : {"Flat", "IVF32,Flat"}) {
    SCOPED_TRACE(type);
    auto idx = fresh(d, type);
    idx->add(recs, rows.data(), n);
    int64_t agree = 0, total = 0;
    for (int64_t q = 0; q < n; q += 15) {
      Filter f;
      f.exclude = {q};
      for (auto& h : idx->search(rows.data() + q * d, 10, f)) {
        agree += recs[h.id].labels[0] == recs[q].labels[0];
        ++total;
      }
    }
    ASSERT_EQ(total, 200 * 10);
    EXPECT_GT(double(agree) / total, 0.78);  // measured 0.84 (chance: 0.1)
    if (type != "Flat") EXPECT_GT(*idx->info().recall_at_10, 0.9);
    // label filter: every hit carries the label
    Filter only7;
    only7.where = {{"label", "7"}};
    for (auto& h : idx->search(rows.data(), 10, only7)) EXPECT_EQ(recs[h.id].labels[0], "7");
  }
}
