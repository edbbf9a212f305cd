// The one rule every expert family follows to multiply by stored weights (vit blocks for
// EVA-CLIP / open_clip / SigLIP, BERT/RoBERTa, HTSAT and its projection heads, Uni3D, ImageBind).
//
// `compute` is the model's precision: kFloat ("fp32") or kBFloat16 ("bf16"). Activations,
// residual sums, norms and softmax are float32 in both. Matmul weights are *stored* as:
//   bf16  -> bfloat16 (zero-copy when the file is bf16);
//   fp32  -> as the file holds them when that is float32, bfloat16 or float16 (zero-copy views of
//            a mapped file), else converted to float32.
// and *multiplied* as:
//   native  (compute bf16 and cpu_has_native_bf16(): AVX512_BF16 / AMX-BF16, or
//            OMNIBIND_BF16_MATMUL=native): activations rounded to bf16, bf16 GEMM, result float32.
//            The two attention matmuls (activation x activation) run in bf16 too.
//   upcast  (everything else): the weight is converted to float32 for this one call (exact for
//            bf16 and fp16: every 16-bit value is a float32 value) into a per-thread buffer that is
//            reused (it grows to the largest weight: 110 MB for EVA02-E), activations stay float32,
//            and the GEMM is libtorch's float32 one; attention matmuls are plain float32.
// So "bf16" on a CPU without bf16 instructions means bf16 weight storage (half the memory) with
// fp32 arithmetic (libtorch 1.13 emulates bf16 GEMMs there 25-50x slower than fp32), and "fp32"
// over a 16-bit file gives results bit-identical to converting the whole file to float32 first.
// See docs/PERFORMANCE.md "bf16 on this CPU".
#pragma once
#include <ATen/core/Tensor.h>

namespace omnibind::experts::mixed {

// True when `compute` is kBFloat16 and the CPU multiplies bf16 natively (cpu_has_native_bf16()).
bool native_bf16(at::ScalarType compute);

// How a matmul weight read from a file (any dtype) is kept for `compute` (see above): contiguous.
at::Tensor stored_weight(const at::Tensor& file_tensor, at::ScalarType compute);

// y = x W^T + b. x: [..., in] any float dtype; weight: [out, in] (fp32, bf16 or fp16; any strides);
// bias: [out] or undefined, any float dtype. Returns float32 [..., out]. Native bf16 only when
// the weight itself is bf16; a float32 weight is always multiplied in float32.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::ScalarType compute);

// a @ b for two activations (attention scores q k^T, probs v), float32 result: bf16 operands
// when native_bf16(compute), float32 otherwise.
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, at::ScalarType compute);

}  // namespace omnibind::experts::mixed
