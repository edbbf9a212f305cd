#include "omnibind/tensor_io/torch_bridge.h"

#include <ATen/ATen.h>

#include <map>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint_writer.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_writer.h"

namespace omnibind::tensor_io {

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::Bool: return at::kBool;
    case DType::U8: return at::kByte;
    case DType::I8: return at::kChar;
    case DType::I16: return at::kShort;
    case DType::I32: return at::kInt;
    case DType::I64: return at::kLong;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F32: return at::kFloat;
    case DType::F64: return at::kDouble;
  }
  return at::kFloat;
}

DType from_scalar_type(at::ScalarType type) {
  switch (type) {
    case at::kBool: return DType::Bool;
    case at::kByte: return DType::U8;
    case at::kChar: return DType::I8;
    case at::kShort: return DType::I16;
    case at::kInt: return DType::I32;
    case at::kLong: return DType::I64;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kFloat: return DType::F32;
    case at::kDouble: return DType::F64;
    default: throw InputError(std::string("tensor dtype ") + c10::toString(type) + " cannot be stored");
  }
}

at::Tensor to_tensor(const RawTensor& raw) {
  auto strides = raw.strides.empty() ? raw.contiguous_strides() : raw.strides;
  auto owner = raw.owner;
  auto* base = const_cast<std::byte*>(raw.data) + raw.storage_offset * static_cast<int64_t>(dtype_size(raw.dtype));
  if (raw.numel() == 0) return at::empty(raw.shape, at::TensorOptions().dtype(to_scalar_type(raw.dtype)));
  return at::from_blob(
      base, raw.shape, strides, [owner](void*) mutable { owner.reset(); },
      at::TensorOptions().dtype(to_scalar_type(raw.dtype)));
}

RawTensor from_tensor(const at::Tensor& tensor) {
  auto t = tensor.detach().to(at::kCPU).contiguous();
  RawTensor raw;
  raw.dtype = from_scalar_type(t.scalar_type());
  raw.shape.assign(t.sizes().begin(), t.sizes().end());
  raw.data = static_cast<const std::byte*>(t.data_ptr());
  raw.storage_bytes = static_cast<size_t>(t.numel()) * t.element_size();
  raw.owner = std::make_shared<at::Tensor>(t);
  return raw;
}

void write_tensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, RawTensor>> raws;
  raws.reserve(tensors.size());
  for (auto& [n, t] : tensors) raws.emplace_back(n, from_tensor(t));
  write_safetensors(path, raws, metadata);
}

namespace {
std::vector<std::pair<std::string, RawTensor>> raw_list(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<std::pair<std::string, RawTensor>> raws;
  raws.reserve(tensors.size());
  for (auto& [n, t] : tensors) raws.emplace_back(n, from_tensor(t));
  return raws;
}
}  // namespace

void write_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  write_torch_checkpoint(path, raw_list(tensors));
}

void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_checkpoint(path, raw_list(tensors), metadata);
}

}  // namespace omnibind::tensor_io
