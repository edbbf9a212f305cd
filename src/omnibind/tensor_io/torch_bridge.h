// RawTensor <-> at::Tensor. Only files that already compute with libtorch include this.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

at::ScalarType to_scalar_type(DType dtype);
DType from_scalar_type(at::ScalarType type);  // InputError for types safetensors cannot hold

// Zero-copy view (the at::Tensor keeps the RawTensor's owner alive). Read-only memory: do not
// write into the result; .clone() first when a mutable tensor is needed.
at::Tensor to_tensor(const RawTensor& raw);

// A RawTensor over the tensor's memory (made contiguous on CPU first); owner keeps it alive.
RawTensor from_tensor(const at::Tensor& tensor);

// at::Tensor list -> a torch.save zip archive (atomic; see torch_writer.h).
void write_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors);

// at::Tensor list -> the format the extension asks for: .pt/.pth torch, else safetensors; with
// `metadata` in either (atomic; see checkpoint_writer.h).
void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Convenience: at::Tensor list -> safetensors (atomic).
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

}  // namespace omnibind::tensor_io
