// numpy <-> at::Tensor and the other conversions every part of the module uses.
#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "py_common.h"

namespace omnibind::python {

py::array as_array(const py::handle& obj) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  return py::module_::import("numpy").attr("asarray")(obj);
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype().attr("name")); }

at::Tensor float_tensor_view(py::array& a, const std::string& what) {
  const char kind = a.dtype().kind();
  const auto item = a.itemsize();
  require(kind == 'f' && (item == 2 || item == 4 || item == 8),
          what + ": expected a float16, float32 or float64 array, got " + dtype_name(a));
  if (!a.dtype().attr("isnative").cast<bool>()) a = a.attr("astype")(a.dtype().attr("newbyteorder")("="));
  // Only C order is read in place: GEMMs over other strides round differently, and a result must not depend on
  // how the caller's array happens to be laid out.
  if (!(a.flags() & py::array::c_style)) a = py::module_::import("numpy").attr("ascontiguousarray")(a);
  std::vector<int64_t> sizes, strides;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    sizes.push_back(a.shape(d));
    strides.push_back(a.strides(d) / item);
  }
  const auto dtype = item == 2 ? at::kHalf : item == 4 ? at::kFloat : at::kDouble;
  return at::from_blob(const_cast<void*>(a.data()), sizes, strides, at::TensorOptions().dtype(dtype));
}

py::array_t<float> to_numpy(const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  auto* keep = new at::Tensor(c);
  py::capsule owner(keep, [](void* p) { delete static_cast<at::Tensor*>(p); });
  std::vector<py::ssize_t> shape(c.sizes().begin(), c.sizes().end());
  return py::array_t<float>(shape, c.data_ptr<float>(), owner);
}

std::vector<std::string> string_list(const py::handle& obj, const std::string& what, bool allow_paths) {
  auto one = [&](const py::handle& h, const std::string& name) -> std::string {
    if (py::isinstance<py::str>(h)) return h.cast<std::string>();
    if (allow_paths && py::hasattr(h, "__fspath__")) {
      py::object p = py::module_::import("os").attr("fspath")(h);
      if (py::isinstance<py::str>(p)) return p.cast<std::string>();
    }
    throw InputError(name + " is " + std::string(py::str(py::type::of(h).attr("__name__"))) + ", expected str" +
                     (allow_paths ? " or a path" : ""));
  };
  if (py::isinstance<py::str>(obj) || (allow_paths && py::hasattr(obj, "__fspath__"))) return {one(obj, what)};
  require(py::isinstance<py::sequence>(obj) || py::hasattr(obj, "__iter__"),
          what + " must be a list of str, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  std::vector<std::string> out;
  for (const auto& h : obj) out.push_back(one(h, what + "[" + std::to_string(out.size()) + "]"));
  return out;
}

py::object json_loads(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

std::string json_dumps(const py::handle& obj, const std::string& what) {
  try {
    return py::module_::import("json").attr("dumps")(obj).cast<std::string>();
  } catch (py::error_already_set& e) {
    throw InputError(what + ": not JSON-serialisable (" + std::string(py::str(e.value())) + ")");
  }
}

}  // namespace omnibind::python
