#include "omnibind/common/cpu_features.h"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>

namespace omnibind {
namespace {

bool detect_native_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  // Leaf 7 sub-leaf 1, EAX bit 5: AVX512_BF16. Leaf 7 sub-leaf 0, EDX bit 22: AMX-BF16.
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool amx_bf16 = (edx >> 22) & 1u;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const bool avx512_bf16 = (eax >> 5) & 1u;
  return amx_bf16 || avx512_bf16;
#else
  return false;  // other architectures: assume emulation (safe: bf16 weights multiplied in fp32)
#endif
}

}  // namespace

bool cpu_has_native_bf16() {
  static const bool value = [] {
    if (const char* env = std::getenv("OMNIBIND_BF16_MATMUL")) {
      if (std::strcmp(env, "native") == 0) return true;
      if (std::strcmp(env, "upcast") == 0) return false;
    }
    return detect_native_bf16();
  }();
  return value;
}

const char* default_precision() { return cpu_has_native_bf16() ? "bf16" : "fp32"; }

}  // namespace omnibind
