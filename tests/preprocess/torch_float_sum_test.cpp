// torch_float_sum adds floats in torch 1.13's CPU order: bit-identical to at::sum (one thread) for
// lengths that exercise every branch (scalar tail, leftover vectors, each cascade level).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <gtest/gtest.h>

#include "omnibind/preprocess/torch_float_sum.h"

namespace omnibind::preprocess {
namespace {

TEST(TorchFloatSum, BitIdenticalToAtSum) {
  if (at::show_config().find("CPU capability usage: AVX2") == std::string::npos)
    GTEST_SKIP() << "SKIPPED: libtorch dispatches a non-AVX2 kernel here (ATEN_CPU_CAPABILITY?); the replica "
                    "models the AVX2 one, which made the reference fixtures";
  const int threads = at::get_num_threads();
  at::set_num_threads(1);  // the fixtures were made single-threaded; larger sums split by thread otherwise
  at::manual_seed(3);
  int differing_from_double = 0;
  for (int64_t n : {0, 1, 7, 8, 31, 32, 33, 400, 511, 4768, 32000, 32768 + 5, 64000, 300001}) {
    // Values of mixed magnitude around an offset, like a clip with DC: order matters for these.
    const at::Tensor x = (at::randn({n}) * at::rand({n}).pow(4) + 1e-3).contiguous();
    const float want = x.sum().item<float>();
    const float got = torch_float_sum(x.data_ptr<float>(), n);
    EXPECT_EQ(got, want) << "n = " << n;
    differing_from_double += got != static_cast<float>(x.to(at::kDouble).sum().item<double>());
  }
  at::set_num_threads(threads);
  EXPECT_GT(differing_from_double, 0) << "the test data must be sensitive to the summation order";
}

}  // namespace
}  // namespace omnibind::preprocess
