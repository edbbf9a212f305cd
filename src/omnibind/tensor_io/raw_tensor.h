// Tensors as stored in files, independent of libtorch: dtype, shape, strides and a pointer into
// memory owned by something (an mmap'ed file, a decompressed buffer) that `owner` keeps alive.
// torch_bridge.h turns them into at::Tensor without copying.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace omnibind::tensor_io {

enum class DType : uint8_t { Bool, U8, I8, I16, I32, I64, F16, BF16, F32, F64 };

size_t dtype_size(DType dtype);
// Safetensors spelling: "BOOL", "U8", "I8", "I16", "I32", "I64", "F16", "BF16", "F32", "F64".
std::string_view dtype_name(DType dtype);
// Parses a safetensors dtype name; false when unknown.
bool dtype_from_name(std::string_view name, DType& out);

struct RawTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;       // in elements; empty means contiguous row-major
  int64_t storage_offset = 0;         // in elements, from `data`
  const std::byte* data = nullptr;    // start of the storage
  size_t storage_bytes = 0;           // bytes available from `data`
  std::shared_ptr<const void> owner;  // keeps `data` alive

  int64_t numel() const;
  bool is_contiguous() const;
  std::vector<int64_t> contiguous_strides() const;
  std::string shape_string() const;  // "[5, 48]"
};

// An ordered set of named tensors (a state dict). Lookup errors name the source file.
class StateDict {
 public:
  explicit StateDict(std::string source = "") : source_(std::move(source)) {}

  void add(std::string name, RawTensor tensor);  // replaces an existing name in place
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // InputError "<source>: missing tensor '<name>'" when absent.
  const RawTensor& at(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  bool empty() const { return names_.empty(); }
  const std::string& source() const { return source_; }

  // The tensors whose names start with `prefix`, with the prefix removed ("module." -> "").
  StateDict with_prefix(const std::string& prefix) const;

 private:
  std::string source_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, RawTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace omnibind::tensor_io
