// A pickle virtual machine (protocols 0-5 as torch.save writes them) that builds PickleValues and
// never runs code. Its policy mirrors torch.load(weights_only=True): the only globals it accepts
// are containers (collections.OrderedDict, set), torch storage types, dtypes and torch's tensor
// rebuild functions; anything else is refused before it is used. Every defect (truncation,
// unknown opcode, stack underflow, excessive nesting, bad tensor arguments) is an InputError
// that starts with the file name; nothing the input says can crash, hang or exhaust memory
// beyond a small multiple of the pickle's size.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "omnibind/tensor_io/pickle_value.h"

namespace omnibind::tensor_io {

// Turns a persistent id (BINPERSID/PERSID operand) into a Storage value. Throws InputError.
using PersistentLoader = std::function<PickleRef(const PickleRef& pid)>;

struct UnpicklerLimits {
  uint32_t max_depth = 200;          // container nesting and MARK nesting
  size_t max_memo = size_t{1} << 22; // memo entries
  size_t max_pushes = size_t{1} << 23;  // values pushed per pickle (each costs ~200 bytes)
  size_t max_rank = 64;              // tensor dimensions
};

class SafeUnpickler {
 public:
  // `file` names the source in errors; `part` (e.g. "archive/data.pkl") says where inside it.
  // The bytes must outlive the unpickler.
  SafeUnpickler(std::string file, std::string part, const std::byte* data, size_t size,
                PersistentLoader persistent_load = nullptr, UnpicklerLimits limits = {});

  // Runs one pickle up to its STOP and returns the value; a second call reads the next pickle
  // (legacy torch files are several pickles back to back).
  PickleRef load();
  size_t position() const { return pos_; }  // bytes consumed so far

  // "refusing to unpickle global ..." unless module.name is on the allowlist.
  static bool is_allowed_global(const std::string& qualified_name);

 private:
  [[noreturn]] void fail(const std::string& what) const;
  const std::byte* take(size_t n);
  std::string_view line();
  uint64_t read_uint(size_t n);
  PickleRef pop();
  PickleRef& top();
  std::vector<PickleRef> pop_mark();
  void push(PickleRef v);
  void memo_put(uint64_t index);
  PickleRef memo_get(uint64_t index);
  void append_to(PickleValue& list, PickleRef v);
  void set_item(PickleValue& dict, PickleRef k, PickleRef v);
  PickleRef make_global(const std::string& module, const std::string& name);
  PickleRef call(const PickleRef& callable, const PickleRef& args);
  PickleRef rebuild_tensor(const std::vector<PickleRef>& args, bool v2);
  PickleRef make_seq(PickleValue::Kind kind, std::vector<PickleRef> items);
  int64_t as_int(const PickleRef& v, const char* what) const;
  std::vector<int64_t> as_int_tuple(const PickleRef& v, const char* what) const;

  std::string file_, part_;
  const std::byte* data_;
  size_t size_, pos_ = 0, op_pos_ = 0, pushes_ = 0;
  PersistentLoader persistent_load_;
  UnpicklerLimits limits_;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
};

// The dtype of a torch storage type global ("torch.FloatStorage" -> F32); false when not one.
bool storage_type_dtype(const std::string& qualified_name, DType& out);

}  // namespace omnibind::tensor_io
