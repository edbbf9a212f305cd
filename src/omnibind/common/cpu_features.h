// What the CPU can do natively, for choosing compute paths (no libtorch).
#pragma once

namespace omnibind {

// True when the CPU has native bfloat16 matrix instructions (AVX512_BF16 or AMX-BF16), i.e. when
// oneDNN's bf16 GEMM runs at or above the fp32 rate. Without them libtorch 1.13 emulates bf16 GEMMs
// 25-50x slower than fp32 (docs/PERFORMANCE.md "bf16 on this CPU"), so bf16 weights are better
// multiplied in fp32. OMNIBIND_BF16_MATMUL=native|upcast overrides the detection (tests, benchmarks).
bool cpu_has_native_bf16();

// "bf16" where the CPU has native bf16, else "fp32": the default precision of model bundles.
const char* default_precision();

}  // namespace omnibind
