// `omnibind locate` through the binary: outputs written (heatmap, overlay, JSON) for single and
// composed queries, and every bad input one line on stderr with exit 2 and nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/media/image.h"
#include "omnibind/media/media_encode.h"
#include "testing/test_support.h"
#include "testing/zoo_bundle.h"

namespace omnibind {
namespace {
namespace fs = std::filesystem;

struct LocateWorld {
  std::string dir, bundle, image, query_image;
  LocateWorld() {
    dir = testkit::make_temp_dir("locate_cli");
    bundle = dir + "/tiny.bundle";
    testkit::write_tiny_zoo_bundle(bundle);
    media::Image im;
    im.width = 60;
    im.height = 44;
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x)
        for (int k = 0; k < 3; ++k) im.rgb.push_back(uint8_t(x > 30 && y > 10 && y < 30 ? 40 * k : 200 + (x + y + k) % 50));
    image = dir + "/scene.png";
    media::write_png(image, im);
    im.width = im.height = 12;
    im.rgb.assign(12 * 12 * 3, 40);
    query_image = dir + "/query.png";
    media::write_png(query_image, im);
  }
};

const LocateWorld& world() {
  static LocateWorld w;
  return w;
}

std::string read_text(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LocateCli, WritesHeatmapOverlayAndJson) {
  const auto& w = world();
  const std::string out = w.dir + "/heat.png", json = w.dir + "/boxes.json", over = w.dir + "/overlay.png";
  auto r = testkit::run_cli({"locate", "--model", w.bundle, "--image", w.image, "--text", "a dark square", "--out", out,
                             "--json", json, "--overlay", over, "--scales", "0.3,0.6", "--top-k", "3", "--progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("regions"), std::string::npos);
  EXPECT_NE(r.err.find("regions/s"), std::string::npos) << "progress on stderr with --progress";
  const auto heat = media::decode_image_file(out);
  EXPECT_EQ(heat.width, 60);
  EXPECT_EQ(heat.height, 44);
  const auto overlay = media::decode_image_file(over);
  EXPECT_EQ(overlay.width, 60);
  const auto j = nlohmann::json::parse(read_text(json));
  EXPECT_EQ(j["image"]["width"], 60);
  EXPECT_EQ(j["boxes"].size(), 3u);
  EXPECT_EQ(j["heat"]["values"].size(), size_t(j["heat"]["height"]));
  EXPECT_EQ(j["query"].size(), 1u);
  for (const auto& b : j["boxes"]) {
    EXPECT_GE(int(b["x"]), 0);
    EXPECT_LE(int(b["x"]) + int(b["w"]), 60);
  }
  for (const auto& e : fs::directory_iterator(w.dir)) EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(LocateCli, ComposedQueriesFollowCommandLineOrder) {
  const auto& w = world();
  const std::string a = w.dir + "/a.json", b = w.dir + "/b.json", c = w.dir + "/c.json";
  auto run = [&](std::vector<std::string> query, const std::string& json) {
    std::vector<std::string> args{"locate", "--model", w.bundle, "--image", w.image, "--out", w.dir + "/h.png",
                                  "--json", json, "--scales", "0.5", "-q"};
    args.insert(args.end(), query.begin(), query.end());
    auto r = testkit::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    return nlohmann::json::parse(read_text(json));
  };
  const auto ja = run({"--text", "red", "--query-image", w.query_image, "--weights=1,-0.5"}, a);
  const auto jb = run({"--query-image", w.query_image, "--text", "red", "--weights=-0.5,1"}, b);
  const auto jc = run({"--text", "red", "--query-image", w.query_image, "--weights=-0.5,1"}, c);
  EXPECT_EQ(ja["heat"]["values"], jb["heat"]["values"]) << "the same composition written in another order";
  EXPECT_NE(ja["heat"]["values"], jc["heat"]["values"]) << "weights apply to the items in command-line order";
  EXPECT_EQ(ja["query"][1]["weight"], -0.5);
}

TEST(LocateCli, BadInputsExit2WithOneLine) {
  const auto& w = world();
  const std::string out = w.dir + "/bad.png";
  const std::vector<std::string> base{"locate", "--model", w.bundle, "--out", out};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  testkit::expect_exit2(with({"--image", w.dir + "/missing.png", "--text", "x"}), out, "missing.png");
  testkit::expect_exit2(with({"--image", w.bundle + "/bundle.json", "--text", "x"}), out, "bundle.json");
  testkit::expect_exit2(with({"--image", w.image}), out, "no query");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--weights", "1,2"}), out, "--weights");
  testkit::expect_exit2(with({"--image", w.image, "--audio", w.dir + "/nope.wav"}), out, "nope.wav");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--scales", "0.2,abc"}), out, "--scales");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--scales", "1.5"}), out, "scale");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--stride", "0"}), out, "stride");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--heat", "max"}), out, "--heat");
  testkit::expect_exit2(with({"--image", w.image, "--text", "x", "--json", w.dir + "/no/dir/b.json"}), out, "--json");
  testkit::expect_exit2({"locate", "--model", w.dir + "/no.bundle", "--image", w.image, "--text", "x", "--out", out}, out,
                        "no.bundle");
  testkit::expect_exit2({"locate", "--model", w.bundle, "--image", w.image, "--text", "x", "--out", w.dir + "/none/h.png"},
                        w.dir + "/none/h.png", "--out");
  testkit::expect_exit2(with({"--text", "x"}), out, "--image");  // required option
}

TEST(LocateCli, HelpNamesTheQueryOptions) {
  auto r = testkit::run_cli({"locate", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--model", "--image", "--text", "--audio", "--point", "--query-image", "--weights", "--out", "--json", "--overlay"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace omnibind
