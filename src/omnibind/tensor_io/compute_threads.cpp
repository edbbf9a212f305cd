#include "omnibind/tensor_io/compute_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <thread>

// OpenBLAS's setter, resolved at run time from the libopenblas libtorch loads; absent with another BLAS.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace omnibind::tensor_io {

int set_compute_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  if (openblas_set_num_threads) openblas_set_num_threads(n);
  return n;
}

}  // namespace omnibind::tensor_io
