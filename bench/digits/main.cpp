// bench_digits: the real-data digits benchmark (apps/digits/digits_benchmark.h) as one command.
//   bench_digits [--data DIR] [--out DIR] [--size full|ci] [--seed S] [--threads T]
// --data defaults to ../shared/data next to the repository; --out to $TMPDIR/omnibind_bench_digits.
// Prints one JSON object (sizes, seconds per stage, mining purity, every row's headline numbers);
// the table is written to OUT/digits_table.{md,json}. Progress on stderr.
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "omnibind/apps/digits/digits_benchmark.h"
#include "omnibind/common/error.h"
#include "omnibind/common/process_memory.h"

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  using namespace omnibind;
  apps::DigitsOptions o;
  o.data_dir = std::filesystem::path(OMNIBIND_SOURCE_DIR) / ".." / "shared" / "data";
  o.out_dir = std::filesystem::temp_directory_path() / "omnibind_bench_digits";
  std::string size = "full";
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] {
        require(i + 1 < argc, a + " needs a value");
        return std::string(argv[++i]);
      };
      if (a == "--data") o.data_dir = next();
      else if (a == "--out") o.out_dir = next();
      else if (a == "--size") size = next();
      else if (a == "--seed") o.seed = std::stoull(next());
      else if (a == "--threads") o.threads = std::stoi(next());
      else if (a == "--help" || a == "-h") {
        std::printf("bench_digits [--data DIR] [--out DIR] [--size full|ci] [--seed S] [--threads T]\n");
        return 0;
      } else
        throw InputError("unknown argument " + a);
    }
    o.size = apps::digits_size(size);
    o.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    auto r = apps::run_digits_benchmark(o);
    std::fprintf(stderr, "%s\n", r.table.to_markdown().c_str());
    std::printf("%s\n", r.summary.dump(2).c_str());
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench_digits: %s\n", e.what());
    return 2;
  } catch (const std::logic_error& e) {  // std::stoull / stoi on a bad number
    std::fprintf(stderr, "bench_digits: bad number (%s)\n", e.what());
    return 2;
  }
  return 0;
}
