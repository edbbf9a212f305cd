// Any-query localisation (retrieval/localisation.h): the window grid, heat and boxes on constructed
// region embeddings with a known answer, and the region cache through a real (tiny, random) bundle:
// reusing it gives exactly what recomputing gives, and each region is the bundle's embedding of its crop.
#include "omnibind/retrieval/localisation.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/retrieval/bundle_query_embedder.h"
#include "testing/test_support.h"
#include "testing/zoo_bundle.h"

namespace omnibind::retrieval {
namespace {

media::Image noise_image(int w, int h, uint64_t seed) {
  media::Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& v : im.rgb) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = uint8_t(s >> 56);
  }
  return im;
}

media::Image crop_of(const media::Image& src, const Box& b) {
  media::Image out;
  out.width = b.w;
  out.height = b.h;
  for (int y = 0; y < b.h; ++y)
    out.rgb.insert(out.rgb.end(), src.rgb.begin() + (size_t(b.y + y) * src.width + b.x) * 3,
                   src.rgb.begin() + (size_t(b.y + y) * src.width + b.x + b.w) * 3);
  return out;
}

TEST(Localisation, IouOfBoxes) {
  EXPECT_DOUBLE_EQ(iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(iou({0, 0, 10, 10}, {10, 0, 10, 10}), 0.0);
  EXPECT_NEAR(iou({0, 0, 10, 10}, {5, 0, 10, 10}), 50.0 / 150.0, 1e-12);
  EXPECT_NEAR(iou({0, 0, 4, 4}, {1, 1, 2, 2}), 4.0 / 16.0, 1e-12);
}

TEST(Localisation, WindowsCoverTheImageOnceEach) {
  for (auto [w, h] : {std::pair{100, 80}, {37, 211}, {64, 64}, {5, 3}}) {
    RegionGrid g;
    g.aspects = {1.0, 2.0};
    const auto windows = region_windows(w, h, g);
    std::set<std::tuple<int, int, int, int>> seen;
    std::vector<int> covered(size_t(w) * h, 0);
    for (const auto& r : windows) {
      ASSERT_GE(r.box.x, 0);
      ASSERT_GE(r.box.y, 0);
      ASSERT_LE(r.box.x + r.box.w, w);
      ASSERT_LE(r.box.y + r.box.h, h);
      ASSERT_GE(r.box.w, 1);
      ASSERT_GE(r.box.h, 1);
      ASSERT_GE(r.scale, 0);
      ASSERT_LT(r.scale, int(g.scales.size()));
      EXPECT_TRUE(seen.insert({r.box.x, r.box.y, r.box.w, r.box.h}).second) << "duplicate window";
      if (r.scale == 0)
        for (int y = r.box.y; y < r.box.y + r.box.h; ++y)
          for (int x = r.box.x; x < r.box.x + r.box.w; ++x) ++covered[size_t(y) * w + x];
    }
    for (int c : covered) ASSERT_GT(c, 0) << w << "x" << h << ": a pixel no window of the smallest scale covers";
  }
  // The smallest scale of a 100x80 image: side 16, step 4 -> 22 x 17 windows.
  RegionGrid g;
  g.scales = {0.2};
  EXPECT_EQ(region_windows(100, 80, g).size(), 22u * 17u);
}

TEST(Localisation, BadGridsAreInputErrors) {
  RegionGrid g;
  g.scales = {0.0};
  EXPECT_NE(testkit::input_error_of([&] { region_windows(10, 10, g); }), "");
  g = {};
  g.stride = 1.5;
  EXPECT_NE(testkit::input_error_of([&] { region_windows(10, 10, g); }), "");
  g = {};
  g.max_regions = 10;
  EXPECT_NE(testkit::input_error_of([&] { region_windows(400, 400, g); }).find("windows"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { parse_fraction_list("0.2,x", "--scales"); }).find("--scales"), std::string::npos);
  EXPECT_EQ(parse_fraction_list("0.2, 0.5", "--scales"), (std::vector<double>{0.2, 0.5}));
}

// Region embeddings whose cosine with e0 grows with the window's overlap of a target box: the heat
// maximum must fall in the target, the best box must match it, and the boxes must not overlap much.
TEST(Localisation, KnownAnswerOnConstructedEmbeddings) {
  RegionEmbeddings re;
  re.width = 120;
  re.height = 90;
  re.grid.scales = {0.2, 0.3, 0.45, 0.7};
  re.regions = region_windows(re.width, re.height, re.grid);
  const Box target{70, 20, 27, 27};
  const int64_t R = int64_t(re.regions.size()), D = 8;
  at::Tensor rows = at::zeros({R, D});
  for (int64_t i = 0; i < R; ++i) {
    const double a = iou(re.regions[size_t(i)].box, target);
    rows[i][0] = a;
    rows[i][1] = 1 - a;
    rows[i][2 + i % 6] = 0.05;  // a little noise per window
  }
  re.unified = rows / rows.norm(2, 1, true);
  re.model = "constructed";
  const std::vector<float> e0 = {1, 0, 0, 0, 0, 0, 0, 0};
  LocateOptions lo;
  lo.top_k = 3;
  const auto r = locate(re, e0, lo);
  EXPECT_TRUE(target.contains(r.peak_x, r.peak_y)) << r.peak_x << "," << r.peak_y;
  ASSERT_EQ(r.boxes.size(), 3u);
  EXPECT_GE(iou(r.boxes[0].box, target), 0.7);
  for (size_t i = 1; i < r.boxes.size(); ++i) {
    EXPECT_LE(r.boxes[i].score, r.boxes[0].score);
    EXPECT_LE(iou(re.regions[size_t(r.boxes[i].region)].box, re.regions[size_t(r.boxes[0].region)].box), lo.nms_iou + 1e-9);
  }
  EXPECT_EQ(r.heat_width, 64);
  EXPECT_EQ(r.heat_height, 48);
  EXPECT_EQ(r.heat.size(), size_t(64 * 48));
  EXPECT_FLOAT_EQ(r.heat_max, *std::max_element(r.heat.begin(), r.heat.end()));
  EXPECT_FLOAT_EQ(r.heat_max, 1.f);  // density: relative to the peak
  EXPECT_GE(r.heat_min, 0.f);
  // The baseline heat (mean cosine of the covering windows) finds it too, in cosine units.
  LocateOptions mean_cosine = lo;
  mean_cosine.heat = HeatMethod::MeanCosine;
  const auto rm = locate(re, e0, mean_cosine);
  EXPECT_TRUE(target.contains(rm.peak_x, rm.peak_y)) << rm.peak_x << "," << rm.peak_y;
  EXPECT_LT(rm.heat_max, 1.f);
  EXPECT_GT(rm.heat_max, rm.heat_min);
  EXPECT_EQ(rm.region_scores, r.region_scores);
  // Without voting the best box is a window itself.
  lo.box_voting = false;
  const auto raw = locate(re, e0, lo);
  const Box& w = re.regions[size_t(raw.boxes[0].region)].box;
  EXPECT_EQ(std::tie(raw.boxes[0].box.x, raw.boxes[0].box.y, raw.boxes[0].box.w, raw.boxes[0].box.h), std::tie(w.x, w.y, w.w, w.h));
  // A scaled query is the same query; a wrong width or a zero vector is refused.
  std::vector<float> scaled = e0;
  scaled[0] = 3;
  EXPECT_EQ(locate(re, scaled, lo).region_scores, raw.region_scores);
  EXPECT_NE(testkit::input_error_of([&] { locate(re, {1, 0, 0}); }).find("dims"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { locate(re, std::vector<float>(8, 0.f)); }), "");
  EXPECT_NE(testkit::input_error_of([&] { locate_in_space(re, "IT", e0); }).find("IT"), std::string::npos);

  const auto j = locate_json(r);
  EXPECT_EQ(j["heat"]["values"].size(), 48u);
  EXPECT_EQ(j["heat"]["values"][0].size(), 64u);
  EXPECT_EQ(j["boxes"].size(), 3u);
  EXPECT_EQ(j["regions"], R);
  const auto heat = heat_colours(r);
  EXPECT_EQ(heat.width, 120);
  EXPECT_EQ(heat.height, 90);
  const auto over = overlay(noise_image(120, 90, 1), r);
  EXPECT_EQ(over.rgb.size(), size_t(120 * 90 * 3));
  EXPECT_NE(testkit::input_error_of([&] { overlay(noise_image(10, 10, 1), r); }), "");
}

class LocalisationBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testkit::make_temp_dir("localisation") + "/tiny.bundle");
    testkit::write_tiny_zoo_bundle(*dir_);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string* dir_;
};
std::string* LocalisationBundle::dir_ = nullptr;

TEST_F(LocalisationBundle, RegionsAreTheBundlesEmbeddingsOfTheCrops) {
  const auto bundle = pipeline::ModelBundle::load(*dir_);
  const auto image = noise_image(48, 40, 5);
  RegionGrid g;
  g.scales = {0.4, 1.0};
  g.batch = 7;  // several batches, the last one partial
  int64_t last = -1, calls = 0;
  EmbedRegionsOptions eo;
  eo.progress = [&](int64_t done, int64_t total) {
    EXPECT_GT(done, last);
    last = done;
    ++calls;
    EXPECT_EQ(total, int64_t(region_windows(48, 40, g).size()));
  };
  const auto re = embed_regions(bundle, image, g, eo);
  const int64_t R = int64_t(re.regions.size());
  EXPECT_EQ(last, R);
  EXPECT_EQ(calls, (R + 6) / 7);
  ASSERT_EQ(re.unified.sizes(), (std::vector<int64_t>{R, bundle.dim()}));
  EXPECT_TRUE(at::allclose(re.unified.norm(2, 1), at::ones({R}), 1e-5, 1e-5));
  EXPECT_EQ(re.spaces.size(), 2u);
  EXPECT_EQ(re.spaces.at("A").size(1), 16);
  EXPECT_EQ(re.spaces.at("B").size(1), 12);
  EXPECT_EQ(re.model, bundle.name());
  for (int64_t i : {int64_t(0), R / 2, R - 1}) {
    const auto png = media::encode_png(crop_of(image, re.regions[size_t(i)].box));
    const at::Tensor one = bundle.embed(experts::Modality::Image, {experts::MediaInput::from_bytes(png, "crop.png")});
    EXPECT_TRUE(at::allclose(re.unified[i], one[0], 1e-5, 1e-6)) << "region " << i;
  }
}

TEST_F(LocalisationBundle, CacheReuseEqualsRecomputation) {
  auto bundle = std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(*dir_));
  BundleQueryEmbedder embedder(bundle);
  const auto image = noise_image(64, 48, 9);
  RegionGrid g;
  g.scales = {0.3, 0.6};
  const auto cache = embed_regions(*bundle, image, g);
  const std::vector<std::vector<QueryItem>> queries = {
      {QueryItem::text("a red striped circle")},
      {QueryItem::text("a blue square"), QueryItem::text("something plain", -0.5f)},
      {QueryItem::media_item(experts::Modality::Image, experts::MediaInput::from_bytes(media::encode_png(noise_image(20, 20, 2)), "q.png"))},
  };
  std::vector<LocateResult> from_cache;
  for (const auto& q : queries) from_cache.push_back(locate(cache, compose_media_query(embedder, q)));
  for (size_t i = 0; i < queries.size(); ++i) {
    const auto fresh_regions = embed_regions(*bundle, image, g);
    EXPECT_TRUE(at::equal(fresh_regions.unified, cache.unified));
    const auto fresh = locate(fresh_regions, compose_media_query(embedder, queries[i]));
    EXPECT_EQ(fresh.heat, from_cache[i].heat) << "query " << i;
    EXPECT_EQ(fresh.region_scores, from_cache[i].region_scores);
    ASSERT_EQ(fresh.boxes.size(), from_cache[i].boxes.size());
    for (size_t b = 0; b < fresh.boxes.size(); ++b) {
      EXPECT_EQ(fresh.boxes[b].region, from_cache[i].boxes[b].region);
      EXPECT_EQ(fresh.boxes[b].box.x, from_cache[i].boxes[b].box.x);
      EXPECT_EQ(fresh.boxes[b].box.w, from_cache[i].boxes[b].box.w);
    }
  }
  // Different queries score the cached regions differently (the cache is not tied to one query).
  EXPECT_NE(from_cache[0].region_scores, from_cache[1].region_scores);
  // A single space of the cache with that space's own query embedding.
  const auto text = bundle->expert_embeddings(experts::Modality::Text, {experts::MediaInput::from_text("a blue square")});
  const at::Tensor b = text.at("B")[0].contiguous();
  const auto in_b = locate_in_space(cache, "B", std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + b.numel()));
  EXPECT_EQ(in_b.region_scores.size(), cache.regions.size());
}

TEST_F(LocalisationBundle, LargeImagesAreDownscaledAndBoxesStayInOriginalPixels) {
  const auto bundle = pipeline::ModelBundle::load(*dir_);
  RegionGrid g;
  g.scales = {0.5, 1.0};
  g.max_image_side = 60;
  const auto re = embed_regions(bundle, noise_image(300, 120, 4), g);
  EXPECT_EQ(re.width, 300);
  int max_x1 = 0;
  for (const auto& r : re.regions) max_x1 = std::max(max_x1, r.box.x + r.box.w);
  EXPECT_EQ(max_x1, 300);
  const auto res = locate(re, std::vector<float>(size_t(bundle.dim()), 1.f));
  EXPECT_EQ(res.image_width, 300);
  EXPECT_LE(res.peak_x, 300);
}

TEST_F(LocalisationBundle, QueriesFromStoredIdsAreRefused) {
  auto bundle = std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(*dir_));
  BundleQueryEmbedder embedder(bundle);
  EXPECT_NE(testkit::input_error_of([&] { compose_media_query(embedder, {QueryItem::stored(3)}); }).find("index"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { compose_media_query(embedder, {}); }), "");
}

}  // namespace
}  // namespace omnibind::retrieval
