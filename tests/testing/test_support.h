// Helpers shared by every test program.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace omnibind::testkit {

// The ../shared folder (fixtures, data) or "" when it is absent.
std::string shared_dir();

// Path under ../shared; GTEST_SKIP when ../shared is absent (use OMNIBIND_REQUIRE_SHARED first).
std::string shared_path(const std::string& relative);

// A fresh empty directory under the system temp dir, removed at process exit.
std::string make_temp_dir(const std::string& tag);

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs build/omnibind with the given arguments (no shell), capturing stdout and stderr.
CliResult run_cli(const std::vector<std::string>& args);

}  // namespace omnibind::testkit

// Skips the current test, printing SKIPPED with the reason, when ../shared is absent.
#define OMNIBIND_REQUIRE_SHARED()                                                          \
  do {                                                                                     \
    if (::omnibind::testkit::shared_dir().empty())                                         \
      GTEST_SKIP() << "SKIPPED: ../shared (fixtures and data) is absent; set OMNIBIND_SHARED_DIR"; \
  } while (0)
