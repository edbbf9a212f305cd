// The values a safe unpickler can produce: Python scalars and containers, plus the torch objects
// a checkpoint holds (storages, tensors, a few type/function references). Containers are shared
// (pickle's memo lets one object appear in several places), so values live behind shared_ptr.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

// A torch storage: typed bytes. `data` may be filled after unpickling (legacy files store the
// bytes after the pickle), so tensors keep the storage and resolve their bytes at the end.
struct TorchStorage {
  std::string key;                    // persistent id key: "0", "1", ... or legacy object ids
  DType dtype = DType::F32;
  int64_t numel = 0;                  // elements, as declared by the persistent id
  const std::byte* data = nullptr;    // null until resolved
  size_t bytes = 0;
  std::shared_ptr<const void> owner;
  bool resolved = false;
};

// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage.
struct TorchTensor {
  std::shared_ptr<TorchStorage> storage;
  int64_t storage_offset = 0;  // elements
  std::vector<int64_t> shape, strides;
};

struct PickleValue {
  enum class Kind { None, Bool, Int, BigInt, Float, Str, Bytes, List, Tuple, Dict, Set, Global, Storage, Tensor };
  Kind kind = Kind::None;
  uint32_t depth = 0;              // container nesting below this value (0 for scalars)
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                   // Str/Bytes contents; Global "module.name"; BigInt LE two's complement
  std::vector<PickleRef> items;    // List/Tuple/Set; Dict: keys and values interleaved (k0, v0, k1, v1...)
  std::unordered_map<std::string, size_t> dict_index;  // Dict: key fingerprint -> pair number
  std::shared_ptr<TorchStorage> storage;
  std::shared_ptr<TorchTensor> tensor;

  PickleValue() = default;
  explicit PickleValue(Kind k) : kind(k) {}
  PickleValue(const PickleValue&) = delete;
  PickleValue& operator=(const PickleValue&) = delete;
  ~PickleValue();  // iterative teardown: deeply nested values must not overflow the stack

  bool is_container() const { return kind == Kind::List || kind == Kind::Tuple || kind == Kind::Dict || kind == Kind::Set; }
  size_t dict_size() const { return items.size() / 2; }
  const PickleRef& dict_key(size_t n) const { return items[2 * n]; }
  const PickleRef& dict_value(size_t n) const { return items[2 * n + 1]; }
  // Dict lookup by string key; nullptr when absent.
  PickleRef dict_get(const std::string& key) const;
  // Inserts or replaces (Python semantics: the first insertion fixes the position).
  // Returns false when the key is not hashable (a container, tensor...) or longer than 1 KiB.
  bool dict_set(PickleRef key, PickleRef value);

  std::string type_name() const;  // "int", "dict", "torch.Tensor"... for error messages
  std::string repr(size_t max_len = 60) const;  // short, for error messages and listings
};

PickleRef make_value(PickleValue::Kind kind);
PickleRef make_int(int64_t v);
PickleRef make_str(std::string s, PickleValue::Kind kind = PickleValue::Kind::Str);

}  // namespace omnibind::tensor_io
