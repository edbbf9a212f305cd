#include "omnibind/common/cpu_features.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace {

// The cpuid answer agrees with what the kernel reports in /proc/cpuinfo (Linux x86 only).
TEST(CpuFeatures, NativeBf16AgreesWithProcCpuinfo) {
  if (std::getenv("OMNIBIND_BF16_MATMUL")) GTEST_SKIP() << "OMNIBIND_BF16_MATMUL overrides the detection";
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line, flags;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  if (flags.empty()) GTEST_SKIP() << "no flags line in /proc/cpuinfo";
  const bool listed = flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_bf16 ") != std::string::npos;
  EXPECT_EQ(omnibind::cpu_has_native_bf16(), listed);
  EXPECT_STREQ(omnibind::default_precision(), listed ? "bf16" : "fp32");
}

}  // namespace
