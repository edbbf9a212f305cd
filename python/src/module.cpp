// The `omnibind` Python module (pybind11): docs/PYTHON.md.
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "py_common.h"

PYBIND11_MODULE(omnibind, m) {
  namespace py = pybind11;
  using namespace omnibind::python;
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
