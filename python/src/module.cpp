// The `omnibind` Python module (pybind11): docs/PYTHON.md.
#include <malloc.h>

#include <cstdlib>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "py_common.h"

namespace {

// glibc serves blocks above its mmap threshold (128 KiB at start) with mmap and returns freed heap tops above
// its trim threshold to the kernel; it raises both itself (up to 32 MiB / 64 MiB) the first time a large mmapped
// block is freed. The CLI's processes get there early; a Python process may not, and then every batch's decoded
// images and activations are mapped, faulted in page by page and unmapped again: 20-30 % more CPU per embedded
// item than `omnibind embed` (bench/python/bench_python_overhead.py, docs/PERFORMANCE.md). Setting the state glibc
// reaches on its own removes that; the user's own settings (MALLOC_*_ / GLIBC_TUNABLES) are left alone.
void settle_malloc_thresholds() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  for (const char* v : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(v) != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

}  // namespace

PYBIND11_MODULE(omnibind, m) {
  namespace py = pybind11;
  using namespace omnibind::python;
  settle_malloc_thresholds();
  m.doc() = "OmniBind in C++: media and text -> one embedding space (docs/PYTHON.md)";
  m.attr("__version__") = OMNIBIND_VERSION;
  // Every omnibind::InputError (a bad file, array, key, option) -> omnibind.InputError, a ValueError with the
  // engine's one-line message.
  py::register_exception<omnibind::InputError>(m, "InputError", PyExc_ValueError);
  m.def(
      "set_threads",
      [](int threads) {
        py::gil_scoped_release unlocked;
        return omnibind::tensor_io::set_compute_threads(threads);
      },
      py::arg("threads"),
      "Compute threads of libtorch, FAISS and OpenBLAS for the whole process (<= 0: every core); returns the count.");
  m.def(
      "experts",
      [] {
        py::dict d;
        for (auto& [name, description] : omnibind::experts::list_experts()) d[py::str(name)] = description;
        return d;
      },
      "The registered expert families {name: description} (bundle.json 'family').");
  register_model(m);
  register_index(m);
  register_binding(m);
}
