// Running a PyTorch baseline script from a bench (bench/python/*.py print one JSON object on stdout).
// Header-only; the including target defines OMNIBIND_SOURCE_DIR.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace omnibind::bench {

// Runs `cmd` through the shell; its stdout parsed as one JSON value, or null when the command fails or
// prints something else.
inline nlohmann::json run_json_command(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (pclose(p) != 0) return nullptr;
  try {
    return nlohmann::json::parse(out);
  } catch (...) {
    return nullptr;
  }
}

// bench/python/<script> ARGS under Debian's /usr/bin/python3 (the one with python3-torch), OpenBLAS and
// OpenMP pinned to `threads` like our side, `extra_env` ("NAME=value ...") prepended; stderr dropped.
inline nlohmann::json run_python_baseline(const std::string& script, const std::string& args, int threads,
                                          const std::string& extra_env = "") {
  return run_json_command("OPENBLAS_NUM_THREADS=" + std::to_string(threads) + " OMP_NUM_THREADS=" +
                          std::to_string(threads) + " " + extra_env + "/usr/bin/python3 " +
                          std::string(OMNIBIND_SOURCE_DIR) + "/bench/python/" + script + " " + args + " 2>/dev/null");
}

}  // namespace omnibind::bench
