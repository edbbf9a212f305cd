// The web page end to end: `omnibind serve --model BUNDLE` over an index of texts, headless Chromium
// (Debian's /usr/bin/chromium) driven by Playwright (tests/e2e, installed by scripts/setup.sh) types a
// real text query into the page; the ranked result cards on screen must put that text's item first.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bundle_world.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;

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
}  // namespace

TEST(WebPageE2E, TextQueryShowsRankedResultsInChromium) {
  const fs::path e2e = fs::path(OMNIBIND_SOURCE_DIR) / "tests/e2e";
  const std::string chromium = std::getenv("OMNIBIND_CHROMIUM") ? std::getenv("OMNIBIND_CHROMIUM") : "/usr/bin/chromium";
  if (!fs::exists(chromium)) GTEST_SKIP() << "SKIPPED: " << chromium << " not found (scripts/setup.sh installs chromium)";
  int st = 0;
  run_capture("node --version >/dev/null 2>&1", st);
  if (st != 0) GTEST_SKIP() << "SKIPPED: node not found (scripts/setup.sh installs nodejs)";
  if (!fs::exists(e2e / "node_modules/playwright-core"))
    GTEST_SKIP() << "SKIPPED: " << (e2e / "node_modules/playwright-core").string()
                 << " missing (scripts/setup.sh runs npm ci there)";

  const auto& w = testkit::world();
  auto [bundle, idx] = testkit::text_index(w, "web");
  testkit::ServeChild srv({"--index", idx, "--model", bundle});
  ASSERT_GT(srv.port, 0) << "server did not start";
  const std::string query = testkit::kTexts[1];
  const std::string cmd = "node '" + (e2e / "web_search.mjs").string() + "' http://127.0.0.1:" + std::to_string(srv.port) +
                          "/ '" + query + "' '" + query + "' " + std::to_string(testkit::kTexts.size()) + " 2>&1";
  std::string out = run_capture(cmd, st);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  ASSERT_EQ(WEXITSTATUS(st), 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.rfind('{', out.find("\"ok\"")), std::string::npos), nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["cards"][0]["source"], query);
  EXPECT_NEAR(j["cards"][0]["score"].get<double>(), 1.0, 1e-3);
  EXPECT_NE(j["status"].get<std::string>().find("5 items, dim 20, model omnibind:tiny"), std::string::npos) << j["status"];
  EXPECT_TRUE(srv.stop());
}
