// keep_freed_memory_in_process: a large block freed and allocated again reuses the pages it already
// touched, instead of being unmapped and faulted in afresh (the cost process_memory.h describes).
// Each gtest case runs in its own process under ctest, so the setting does not leak into others.
#include "omnibind/common/process_memory.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Minor page faults taken by allocating, touching and freeing `bytes` once more after a first round.
long faults_of_second_round(size_t bytes) {
  for (int round = 0; round < 2; ++round) {
    const long before = minor_faults();
    auto* p = static_cast<volatile char*>(std::malloc(bytes));
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    std::free(const_cast<char*>(p));
    if (round == 1) return minor_faults() - before;
  }
  return -1;
}

constexpr size_t kBlock = size_t{96} << 20;  // above glibc's 32 MB mmap-threshold ceiling
constexpr long kPages = static_cast<long>(kBlock / 4096);

}  // namespace

TEST(ProcessMemory, LargeBlocksReuseTouchedPagesOnceEnabled) {
  ASSERT_TRUE(omnibind::common::keep_freed_memory_in_process());
  // The second round finds the pages in the heap: a handful of faults, not one per page.
  EXPECT_LT(faults_of_second_round(kBlock), kPages / 20);
}

TEST(ProcessMemory, GlibcDefaultsRefaultEveryPage) {
  // The baseline the setting fixes: without it the block is unmapped on free and faulted in again.
  EXPECT_GT(faults_of_second_round(kBlock), kPages / 2);
}

TEST(ProcessMemory, EnvironmentKeepsTheDefaults) {
  setenv("OMNIBIND_MALLOC_DEFAULTS", "1", 1);
  EXPECT_FALSE(omnibind::common::keep_freed_memory_in_process());
  EXPECT_GT(faults_of_second_round(kBlock), kPages / 2);
  unsetenv("OMNIBIND_MALLOC_DEFAULTS");
}
