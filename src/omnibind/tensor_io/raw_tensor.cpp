#include "omnibind/tensor_io/raw_tensor.h"

#include "omnibind/common/error.h"

namespace omnibind::tensor_io {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Bool: case DType::U8: case DType::I8: return 1;
    case DType::I16: case DType::F16: case DType::BF16: return 2;
    case DType::I32: case DType::F32: return 4;
    case DType::I64: case DType::F64: return 8;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "BOOL";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
    case DType::I16: return "I16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F32: return "F32";
    case DType::F64: return "F64";
  }
  return "?";
}

bool dtype_from_name(std::string_view name, DType& out) {
  static const std::pair<std::string_view, DType> table[] = {
      {"BOOL", DType::Bool}, {"U8", DType::U8},   {"I8", DType::I8},     {"I16", DType::I16},
      {"I32", DType::I32},   {"I64", DType::I64}, {"F16", DType::F16},   {"BF16", DType::BF16},
      {"F32", DType::F32},   {"F64", DType::F64}};
  for (auto& [n, d] : table)
    if (n == name) {
      out = d;
      return true;
    }
  return false;
}

int64_t RawTensor::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::vector<int64_t> RawTensor::contiguous_strides() const {
  std::vector<int64_t> st(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * shape[i + 1];
  return st;
}

bool RawTensor::is_contiguous() const {
  if (strides.empty()) return true;
  auto c = contiguous_strides();
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != 1 && strides[i] != c[i]) return false;
  return true;
}

std::string RawTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void StateDict::add(std::string name, RawTensor tensor) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    index_.emplace(name, names_.size());
    names_.push_back(name);
  }
  tensors_[name] = std::move(tensor);
}

const RawTensor& StateDict::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw InputError((source_.empty() ? std::string("state dict") : source_) + ": missing tensor '" + name + "'");
  return it->second;
}

StateDict StateDict::with_prefix(const std::string& prefix) const {
  StateDict out(source_);
  for (auto& n : names_)
    if (n.compare(0, prefix.size(), prefix) == 0) out.add(n.substr(prefix.size()), tensors_.at(n));
  return out;
}

}  // namespace omnibind::tensor_io
