// How the process's heap gives memory back to the kernel.
//
// glibc serves every allocation above 32 MB (the ceiling of its dynamic mmap threshold) with a fresh
// mmap and unmaps it on free, and trims the heap top above 128 KB. Inference and training allocate
// and free tensors of that size at every call (Uni3D's mini-PointNet holds [32768, 512] float32
// activations), so each call re-faults every page; on this project's paravirtualised VMs a page
// fault costs ~5x a native one and the faults were 40-90% of the time (docs/PERFORMANCE.md, "Heap").
#pragma once

namespace omnibind::common {

// Serves large blocks from the heap (no per-allocation mmap) and keeps freed memory for reuse instead
// of trimming it. Peak RSS is unchanged; RSS no longer drops after a peak. Call once, first thing in
// main(). Set OMNIBIND_MALLOC_DEFAULTS=1 to keep glibc's defaults. Returns whether it changed them.
bool keep_freed_memory_in_process();

}  // namespace omnibind::common
