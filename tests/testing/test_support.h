// Helpers shared by every test program.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
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
// The message of the InputError `f` throws, or "" when it throws none (other exceptions propagate).
std::string input_error_of(const std::function<void()>& f);

// Runs build/omnibind with the given arguments (no shell), capturing stdout and stderr.
CliResult run_cli(const std::vector<std::string>& args);

// Runs the CLI and expects what every bad input must give: exit 2, exactly one line on stderr
// containing `needle`, and no file at `out`.
void expect_exit2(const std::vector<std::string>& args, const std::string& out, const std::string& needle);

// Tensor `key` of a safetensors file as (shape, float32 values); empty when absent or not F32.
std::pair<std::vector<int64_t>, std::vector<float>> read_f32(const std::string& path, const std::string& key);

// `omnibind serve ARGS... --port 0` as a child process; the port is read from its first stdout line
// ("...127.0.0.1:PORT"), so port is 0 when the server did not start. The destructor stops it.
struct ServeChild {
  int pid = -1;
  int port = 0;
  explicit ServeChild(std::vector<std::string> args);
  ~ServeChild();
  ServeChild(const ServeChild&) = delete;
  ServeChild& operator=(const ServeChild&) = delete;
  // Sends `signal` (SIGTERM = graceful) and waits; true when the child exited with status 0.
  bool stop(int signal = 15);
};

}  // namespace omnibind::testkit

// Skips the current test, printing SKIPPED with the reason, when ../shared is absent.
#define OMNIBIND_REQUIRE_SHARED()                                                          \
  do {                                                                                     \
    if (::omnibind::testkit::shared_dir().empty())                                         \
      GTEST_SKIP() << "SKIPPED: ../shared (fixtures and data) is absent; set OMNIBIND_SHARED_DIR"; \
  } while (0)
