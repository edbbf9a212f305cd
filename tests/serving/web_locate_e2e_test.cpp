// The page's localisation view end to end: an in-process server over the demo's index and bundle,
// headless Chromium (Debian's /usr/bin/chromium) driven by Playwright (tests/e2e/web_locate.mjs,
// installed by scripts/setup.sh) uploads a scene, builds "this text + this sound − that text", locates
// it, then picks a picture from the search results and locates a text in it. What the page shows must
// be what POST /v1/locate answers for the same picture and query, drawn over the picture.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "locate_fixture.h"
#include "omnibind/common/atomic_file.h"

namespace fs = std::filesystem;
using namespace omnibind;
using json = nlohmann::json;

namespace {
std::string run_capture(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  status = ::pclose(p);
  return out;
}

void expect_same_boxes(const json& shown, const json& api) {
  ASSERT_EQ(shown.size(), api.size()) << shown.dump() << " vs " << api.dump();
  for (size_t i = 0; i < api.size(); ++i) {
    for (const char* k : {"x", "y", "w", "h"}) EXPECT_EQ(shown[i][k].get<int>(), api[i][k].get<int>()) << i << k;
    EXPECT_NEAR(shown[i]["score"].get<double>(), api[i]["score"].get<double>(), 1e-4) << i;
  }
}
}  // namespace

TEST(WebLocateE2E, UploadComposeLocateAndLocateHereInChromium) {
  const fs::path e2e = fs::path(OMNIBIND_SOURCE_DIR) / "tests/e2e";
  const std::string chromium = std::getenv("OMNIBIND_CHROMIUM") ? std::getenv("OMNIBIND_CHROMIUM") : "/usr/bin/chromium";
  if (!fs::exists(chromium)) GTEST_SKIP() << "SKIPPED: " << chromium << " not found (scripts/setup.sh installs chromium)";
  int st = 0;
  run_capture("node --version >/dev/null 2>&1", st);
  if (st != 0) GTEST_SKIP() << "SKIPPED: node not found (scripts/setup.sh installs nodejs)";
  if (!fs::exists(e2e / "node_modules/playwright-core"))
    GTEST_SKIP() << "SKIPPED: " << (e2e / "node_modules/playwright-core").string()
                 << " missing (scripts/setup.sh runs npm ci there)";

  const auto& d = testkit::demo_output();
  ASSERT_TRUE(d.error.empty()) << d.error;
  auto pick = testkit::pick_pictures(d);
  ASSERT_TRUE(pick.ok);
  const testkit::WorldPicture* sound = nullptr;
  for (const auto& s : d.sounds)
    if (s.cls == pick.a.cls) {
      sound = &s;
      break;
    }
  ASSERT_NE(sound, nullptr) << "no sound of class " << pick.a.cls;
  auto scene = testkit::make_scene(pick.a, pick.b);
  const std::string scene_path = testkit::make_temp_dir("web_locate") + "/scene.png";
  std::ofstream(scene_path, std::ios::binary) << scene.png;

  retrieval::EmbedderSpec spec;
  spec.model = d.bundle;
  serving::ServerOptions opt;
  opt.allow_paths = {d.world};
  testkit::LocateServer srv(d.index, retrieval::make_query_embedder(spec), opt);
  ASSERT_GT(srv.port, 0);

  const std::string text = "a picture of a " + pick.a.cls, minus = "a picture of a " + pick.b.cls;
  const std::string search = "a picture of a " + pick.b.cls;
  const std::string cmd = "node '" + (e2e / "web_locate.mjs").string() + "' http://127.0.0.1:" + std::to_string(srv.port) +
                          "/ '" + scene_path + "' '" + text + "' '" + sound->path + "' '" + minus + "' '" + search + "' 2>&1";
  std::string out = run_capture(cmd, st);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  ASSERT_EQ(WEXITSTATUS(st), 0) << out;
  auto j = json::parse(out.substr(out.rfind('{', out.find("\"ok\"")), std::string::npos), nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;

  // 1. The composed query as built on the page, and what it located in the uploaded scene.
  ASSERT_EQ(j["items"].size(), 3u) << j["items"].dump();
  EXPECT_EQ(j["items"][0]["sign"], "+");
  EXPECT_EQ(j["items"][0]["label"], "text: " + text);
  EXPECT_EQ(j["items"][1]["sign"], "+");
  EXPECT_EQ(j["items"][1]["label"], "audio: " + fs::path(sound->path).filename().string());
  EXPECT_EQ(j["items"][2]["sign"], "\u2212");
  EXPECT_EQ(j["items"][2]["label"], "text: " + minus);
  EXPECT_NE(j["formula"].get<std::string>().find("\u2212 text: " + minus), std::string::npos) << j["formula"];
  const json& up = j["uploaded"];
  EXPECT_EQ(up["picture"], "uploaded: scene.png");
  EXPECT_EQ(up["image"]["natural"], json::array({192, 96}));
  EXPECT_EQ(up["canvas"], up["image"]["shown"]);       // the heatmap covers the picture as shown
  EXPECT_GT(up["painted"].get<double>(), 0.99);        // every pixel of it
  const json query = json::array({json{{"type", "text"}, {"text", text}, {"weight", 1}},
                                  json{{"type", "audio"}, {"data", serving::base64_encode(read_file_bytes(sound->path))}, {"weight", 1}},
                                  json{{"type", "text"}, {"text", minus}, {"weight", -1}}});
  auto api = srv.post("/v1/locate", json{{"image", {{"type", "image"}, {"data", scene.base64()}}}, {"query", query}, {"k", 3}});
  ASSERT_EQ(api.first, 200) << api.second.dump().substr(0, 300);
  EXPECT_TRUE(api.second["cached"].get<bool>());  // the page's request embedded the scene's regions
  expect_same_boxes(up["boxes"], api.second["boxes"]);
  EXPECT_NE(up["summary"].get<std::string>().find(std::to_string(api.second["regions"].get<int>()) + " regions"), std::string::npos);

  // 2. "locate here" on the first image result of a text search.
  const int64_t id = std::stoll(j["chosen_id"].get<std::string>());
  const json& ch = j["chosen"];
  EXPECT_EQ(ch["picture"].get<std::string>().rfind("item " + std::to_string(id), 0), 0u) << ch["picture"];
  auto rec = srv.index->item(id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->modality, "image");
  const auto picture = media::decode_image_file(rec->source);
  EXPECT_EQ(ch["image"]["natural"], json::array({picture.width, picture.height}));
  EXPECT_GT(ch["painted"].get<double>(), 0.99);
  api = srv.post("/v1/locate", json{{"image", {{"id", id}}}, {"query", json::array({json{{"type", "text"}, {"text", search}, {"weight", 1}}})}, {"k", 3}});
  ASSERT_EQ(api.first, 200) << api.second.dump().substr(0, 300);
  expect_same_boxes(ch["boxes"], api.second["boxes"]);
}
