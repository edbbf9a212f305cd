// Shared pieces of the Python module: numpy <-> at::Tensor, errors, the registration functions of each part.
#pragma once
#include <ATen/core/Tensor.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace omnibind::python {

namespace py = pybind11;

// np.asarray(obj): any array-like (lists included) as an ndarray.
py::array as_array(const py::handle& obj);
// "float32", "int64", ... (numpy's name of the array's dtype).
std::string dtype_name(const py::array& a);

// A float16/32/64 array as an at::Tensor of the same dtype. Zero copy when `a` is C-contiguous; otherwise `a`
// is replaced by a C-contiguous copy first (results never depend on the caller's memory layout: GEMMs over
// other strides round differently). The tensor points into `a`'s memory: keep `a` alive while it is used.
// InputError "<what>: ..." for any other dtype (ints, bools, objects, complex).
at::Tensor float_tensor_view(py::array& a, const std::string& what);

// A float tensor as a float32 numpy array sharing the tensor's memory (converted/contiguous first if needed).
py::array_t<float> to_numpy(const at::Tensor& t);

// Python strings out of a str or a sequence of str / os.PathLike ("paths[2] is int, expected str").
std::vector<std::string> string_list(const py::handle& obj, const std::string& what, bool allow_paths);

// Converts a JSON value (nlohmann) text to a Python object and back (through the json module).
py::object json_loads(const std::string& text);
std::string json_dumps(const py::handle& obj, const std::string& what);

void register_model(py::module_& m);
void register_index(py::module_& m);
void register_binding(py::module_& m);
void register_training(py::module_& m);

}  // namespace omnibind::python
