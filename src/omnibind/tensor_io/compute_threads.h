// Compute threads for every layer's CPU work: libtorch's intra-op pool and FAISS (both OpenMP,
// one libgomp) and OpenBLAS's own pthread pool (Debian's libopenblas0-pthread), which at::set_num_threads
// does not reach but which runs every float32 at::mm (expert linears in float32, tuple mining's similarity blocks, projector GEMMs).
#pragma once

namespace omnibind::tensor_io {

// Sets all three pools to `threads` (<= 0: every core) and returns the count used.
int set_compute_threads(int threads);

}  // namespace omnibind::tensor_io
