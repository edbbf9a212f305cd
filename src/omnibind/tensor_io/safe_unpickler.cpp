#include "omnibind/tensor_io/safe_unpickler.h"

#include <cstring>
#include <limits>
#include <unordered_set>

#include "omnibind/common/error.h"

namespace omnibind::tensor_io {

using Kind = PickleValue::Kind;

namespace {

const std::unordered_map<std::string, DType>& storage_types() {
  static const std::unordered_map<std::string, DType> table = [] {
    std::unordered_map<std::string, DType> t;
    const std::pair<const char*, DType> base[] = {
        {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},  {"BFloat16Storage", DType::BF16},
        {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
        {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},  {"ByteStorage", DType::U8},
        {"BoolStorage", DType::Bool}};
    for (auto& [n, d] : base) {
      t[std::string("torch.") + n] = d;
      t[std::string("torch.cuda.") + n] = d;  // old GPU checkpoints: loaded onto the CPU
    }
    // Untyped storages (torch >= 1.13 when a storage itself is saved) are bytes.
    t["torch.UntypedStorage"] = DType::U8;
    t["torch.storage.UntypedStorage"] = DType::U8;
    t["torch.storage._UntypedStorage"] = DType::U8;
    return t;
  }();
  return table;
}

// Globals that are inert values (types, dtypes): allowed, never callable except as noted.
const std::unordered_set<std::string>& inert_globals() {
  static const std::unordered_set<std::string> s = {
      "torch.Tensor", "torch.nn.parameter.Parameter", "torch.float32", "torch.float", "torch.float16",
      "torch.half", "torch.bfloat16", "torch.float64", "torch.double", "torch.int64", "torch.long",
      "torch.int32", "torch.int", "torch.int16", "torch.short", "torch.int8", "torch.uint8", "torch.bool"};
  return s;
}

const std::unordered_set<std::string>& callable_globals() {
  static const std::unordered_set<std::string> s = {
      "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
      "torch._tensor._rebuild_from_type_v2", "torch.Size", "builtins.set", "builtins.frozenset",
      "__builtin__.set", "__builtin__.frozenset"};
  return s;
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 0x92: return "NEWOBJ_EX";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 'S': return "STRING";
    default: return nullptr;
  }
}

// pickle's raw-unicode-escape (UNICODE opcode): bytes are Latin-1 code points, \uXXXX and
// \UXXXXXXXX escapes; output UTF-8.
bool decode_raw_unicode_escape(std::string_view in, std::string& out) {
  auto put = [&](uint32_t cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) out += static_cast<char>(0xC0 | cp >> 6), out += static_cast<char>(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
      out += static_cast<char>(0xE0 | cp >> 12), out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
          out += static_cast<char>(0x80 | (cp & 0x3F));
    else
      out += static_cast<char>(0xF0 | cp >> 18), out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
          out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), out += static_cast<char>(0x80 | (cp & 0x3F));
  };
  for (size_t i = 0; i < in.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(in[i]);
    if (c == '\\' && i + 1 < in.size() && (in[i + 1] == 'u' || in[i + 1] == 'U')) {
      const size_t n = in[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + n > in.size()) return false;
      uint32_t cp = 0;
      for (size_t k = 0; k < n; ++k) {
        const char h = in[i + 2 + k];
        const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (v < 0) return false;
        cp = cp << 4 | static_cast<uint32_t>(v);
      }
      if (cp > 0x10FFFF) return false;
      put(cp);
      i += 1 + n;
    } else {
      put(c);
    }
  }
  return true;
}

bool parse_int(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

}  // namespace

bool storage_type_dtype(const std::string& qualified_name, DType& out) {
  auto it = storage_types().find(qualified_name);
  if (it == storage_types().end()) return false;
  out = it->second;
  return true;
}

bool SafeUnpickler::is_allowed_global(const std::string& q) {
  return storage_types().count(q) || inert_globals().count(q) || callable_globals().count(q);
}

SafeUnpickler::SafeUnpickler(std::string file, std::string part, const std::byte* data, size_t size,
                             PersistentLoader persistent_load, UnpicklerLimits limits)
    : file_(std::move(file)), part_(std::move(part)), data_(data), size_(size),
      persistent_load_(std::move(persistent_load)), limits_(limits) {}

void SafeUnpickler::fail(const std::string& what) const {
  std::string where = part_.empty() ? "" : " in " + part_;
  throw InputError(file_ + ": " + what + " (pickle" + where + ", opcode at byte " + std::to_string(op_pos_) + ")");
}

const std::byte* SafeUnpickler::take(size_t n) {
  if (n > size_ - pos_) fail("pickle is truncated: needs " + std::to_string(n) + " more bytes, " + std::to_string(size_ - pos_) + " left");
  const std::byte* p = data_ + pos_;
  pos_ += n;
  return p;
}

std::string_view SafeUnpickler::line() {
  const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
  if (!nl) fail("pickle is truncated: unterminated text argument");
  const size_t n = static_cast<const std::byte*>(nl) - (data_ + pos_);
  std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n + 1;
  return out;
}

uint64_t SafeUnpickler::read_uint(size_t n) {
  const std::byte* p = take(n);
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

PickleRef SafeUnpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow (corrupt pickle)");
  PickleRef v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

PickleRef& SafeUnpickler::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow (corrupt pickle)");
  return stack_.back();
}

std::vector<PickleRef> SafeUnpickler::pop_mark() {
  if (marks_.empty()) fail("MARK expected but none is open (corrupt pickle)");
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<PickleRef> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                               std::make_move_iterator(stack_.end()));
  stack_.resize(m);
  return items;
}

void SafeUnpickler::push(PickleRef v) {
  if (++pushes_ > limits_.max_pushes) fail("pickle creates more than " + std::to_string(limits_.max_pushes) + " objects");
  stack_.push_back(std::move(v));
}

void SafeUnpickler::memo_put(uint64_t index) {
  if (memo_.size() >= limits_.max_memo && !memo_.count(index)) fail("memo grows past " + std::to_string(limits_.max_memo) + " entries");
  memo_[index] = top();
}

PickleRef SafeUnpickler::memo_get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) fail("memo key " + std::to_string(index) + " was never stored (corrupt pickle)");
  return it->second;
}

// Records nesting as containers grow; values that get too deep are refused so that no later
// traversal has to recurse without bound.
static void grow_depth(PickleValue& parent, const PickleValue& child, uint32_t max_depth, const std::function<void(const std::string&)>& fail) {
  const uint32_t d = child.is_container() ? child.depth + 1 : 1;
  if (d > parent.depth) parent.depth = d;
  if (parent.depth > max_depth) fail("containers nested deeper than " + std::to_string(max_depth) + " levels");
}

void SafeUnpickler::append_to(PickleValue& list, PickleRef v) {
  if (list.kind != Kind::List && list.kind != Kind::Set) fail("APPEND/ADDITEMS target is a " + list.type_name() + ", not a list");
  if (v.get() == &list) fail("a list that contains itself is not supported");
  grow_depth(list, *v, limits_.max_depth, [this](const std::string& m) { fail(m); });
  list.items.push_back(std::move(v));
}

void SafeUnpickler::set_item(PickleValue& dict, PickleRef k, PickleRef v) {
  if (dict.kind != Kind::Dict) fail("SETITEM target is a " + dict.type_name() + ", not a dict");
  grow_depth(dict, *v, limits_.max_depth, [this](const std::string& m) { fail(m); });
  const std::string key_type = k->type_name();
  if (!dict.dict_set(std::move(k), std::move(v))) fail("dict key of type " + key_type + " is not supported (or longer than 1 KiB)");
}

PickleRef SafeUnpickler::make_seq(Kind kind, std::vector<PickleRef> items) {
  auto v = make_value(kind);
  for (auto& c : items) grow_depth(*v, *c, limits_.max_depth, [this](const std::string& m) { fail(m); });
  v->items = std::move(items);
  return v;
}

PickleRef SafeUnpickler::make_global(const std::string& module, const std::string& name) {
  std::string q = module + "." + name;
  if (!is_allowed_global(q))
    throw InputError(file_ + ": refusing to unpickle global '" + q +
                     "' (only tensors, containers and torch rebuild functions are allowed)");
  auto v = make_value(Kind::Global);
  v->s = std::move(q);
  return v;
}

int64_t SafeUnpickler::as_int(const PickleRef& v, const char* what) const {
  if (v->kind == Kind::Int) return v->i;
  if (v->kind == Kind::Bool) return v->b;
  fail(std::string(what) + " must be an int, got " + v->type_name());
}

std::vector<int64_t> SafeUnpickler::as_int_tuple(const PickleRef& v, const char* what) const {
  if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(std::string(what) + " must be a tuple, got " + v->type_name());
  if (v->items.size() > limits_.max_rank) fail(std::string(what) + " has more than " + std::to_string(limits_.max_rank) + " dimensions");
  std::vector<int64_t> out;
  for (auto& c : v->items) {
    int64_t x = as_int(c, what);
    if (x < 0) fail(std::string(what) + " has a negative entry " + std::to_string(x));
    out.push_back(x);
  }
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
// _rebuild_tensor(storage, storage_offset, size, stride)
PickleRef SafeUnpickler::rebuild_tensor(const std::vector<PickleRef>& a, bool v2) {
  const char* fn = v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
  if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
    fail(std::string(fn) + " called with " + std::to_string(a.size()) + " arguments");
  if (a[0]->kind != Kind::Storage) fail(std::string(fn) + " needs a storage, got " + a[0]->type_name());
  auto t = std::make_shared<TorchTensor>();
  t->storage = a[0]->storage;
  t->storage_offset = as_int(a[1], "storage_offset");
  if (t->storage_offset < 0) fail("negative storage_offset");
  t->shape = as_int_tuple(a[2], "tensor size");
  t->strides = as_int_tuple(a[3], "tensor stride");
  if (t->shape.size() != t->strides.size())
    fail("tensor size has " + std::to_string(t->shape.size()) + " dimensions but stride has " + std::to_string(t->strides.size()));
  auto v = make_value(Kind::Tensor);
  v->tensor = std::move(t);
  return v;
}

PickleRef SafeUnpickler::call(const PickleRef& callable, const PickleRef& args) {
  if (callable->kind != Kind::Global || !callable_globals().count(callable->s))
    fail("cannot call a " + callable->type_name());
  if (args->kind != Kind::Tuple) fail("arguments to " + callable->s + " are a " + args->type_name() + ", not a tuple");
  const std::string& f = callable->s;
  const auto& a = args->items;
  if (f == "collections.OrderedDict") {
    auto d = make_value(Kind::Dict);
    if (a.empty()) return d;
    if (a.size() != 1 || (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple)) fail("OrderedDict called with unsupported arguments");
    for (auto& pair : a[0]->items) {
      if ((pair->kind != Kind::Tuple && pair->kind != Kind::List) || pair->items.size() != 2) fail("OrderedDict item is not a pair");
      set_item(*d, pair->items[0], pair->items[1]);
    }
    return d;
  }
  if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a, true);
  if (f == "torch._utils._rebuild_tensor") return rebuild_tensor(a, false);
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its data for inference.
    const size_t want = f == "torch._utils._rebuild_parameter" ? 3 : 4;
    if (a.size() != want || a[0]->kind != Kind::Tensor) fail(f + " called with unsupported arguments");
    return a[0];
  }
  if (f == "torch._tensor._rebuild_from_type_v2") {
    // (func, new_type, args, state): tensor subclasses; only plain Tensor/Parameter are allowed.
    if (a.size() != 4 || a[1]->kind != Kind::Global || (a[1]->s != "torch.Tensor" && a[1]->s != "torch.nn.parameter.Parameter"))
      fail("_rebuild_from_type_v2 called with unsupported arguments");
    if (a[0]->kind != Kind::Global || a[0]->s == "torch._tensor._rebuild_from_type_v2") fail("_rebuild_from_type_v2 must wrap a tensor rebuild function");
    PickleRef out = call(a[0], a[2]);
    if (out->kind != Kind::Tensor) fail("_rebuild_from_type_v2 did not produce a tensor");
    return out;
  }
  if (f == "torch.Size") {
    if (a.size() != 1 || (a[0]->kind != Kind::Tuple && a[0]->kind != Kind::List)) fail("torch.Size called with unsupported arguments");
    std::vector<PickleRef> items = a[0]->items;
    return make_seq(Kind::Tuple, std::move(items));
  }
  // set / frozenset
  auto s = make_value(Kind::Set);
  if (a.size() > 1) fail(f + " called with " + std::to_string(a.size()) + " arguments");
  if (a.size() == 1) {
    if (a[0]->kind != Kind::Tuple && a[0]->kind != Kind::List && a[0]->kind != Kind::Set) fail(f + " needs a sequence");
    for (auto& c : a[0]->items) append_to(*s, c);
  }
  return s;
}

PickleRef SafeUnpickler::load() {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  pushes_ = 0;
  while (true) {
    op_pos_ = pos_;
    const uint8_t op = static_cast<uint8_t>(*take(1));
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = read_uint(1);
        if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95: read_uint(8); break;  // FRAME: a size hint only; we read the whole buffer
      case '.': {  // STOP
        if (!marks_.empty()) fail("STOP with an open MARK (corrupt pickle)");
        if (stack_.size() != 1) fail("STOP with " + std::to_string(stack_.size()) + " values on the stack (expected 1)");
        PickleRef result = std::move(stack_.back());
        stack_.clear();
        memo_.clear();
        return result;
      }
      case '0': pop(); break;  // POP
      case '1': pop_mark(); break;  // POP_MARK
      case '2': push(top()); break;  // DUP
      case '(':  // MARK
        if (marks_.size() >= limits_.max_depth) fail("MARKs nested deeper than " + std::to_string(limits_.max_depth) + " levels");
        marks_.push_back(stack_.size());
        break;
      case 'N': push(make_value(Kind::None)); break;
      case 0x88: case 0x89: {  // NEWTRUE / NEWFALSE
        auto v = make_value(Kind::Bool);
        v->b = op == 0x88;
        push(v);
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_uint(4))))); break;  // BININT
      case 'K': push(make_int(static_cast<int64_t>(read_uint(1)))); break;  // BININT1
      case 'M': push(make_int(static_cast<int64_t>(read_uint(2)))); break;  // BININT2
      case 0x8a: case 0x8b: {  // LONG1 / LONG4: little-endian two's complement
        uint64_t n = op == 0x8a ? read_uint(1) : read_uint(4);
        if (op == 0x8b && (n & 0x80000000u)) fail("LONG4 with a negative length");
        const std::byte* p = take(n);
        if (n <= 8) {
          uint64_t v = 0;
          for (size_t i = n; i-- > 0;) v = v << 8 | static_cast<uint8_t>(p[i]);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          push(make_int(static_cast<int64_t>(v)));
        } else {
          push(make_str(std::string(reinterpret_cast<const char*>(p), n), Kind::BigInt));
        }
        break;
      }
      case 'I': case 'L': {  // INT / LONG (text)
        std::string_view t = line();
        if (op == 'I' && (t == "01" || t == "00")) {
          auto v = make_value(Kind::Bool);
          v->b = t == "01";
          push(v);
          break;
        }
        if (op == 'L' && !t.empty() && t.back() == 'L') t.remove_suffix(1);
        int64_t v = 0;
        if (!parse_int(t, v)) fail("bad or out-of-range integer literal '" + std::string(t.substr(0, 40)) + "'");
        push(make_int(v));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian)
        const std::byte* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | static_cast<uint8_t>(p[i]);
        auto v = make_value(Kind::Float);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        break;
      }
      case 'F': {  // FLOAT (text)
        std::string t(line());
        char* end = nullptr;
        auto v = make_value(Kind::Float);
        v->f = std::strtod(t.c_str(), &end);
        if (t.empty() || end != t.c_str() + t.size()) fail("bad float literal");
        push(v);
        break;
      }
      case 'X': case 0x8c: case 0x8d:  // BINUNICODE / SHORT_BINUNICODE / BINUNICODE8
      case 'B': case 'C': case 0x8e:   // BINBYTES / SHORT_BINBYTES / BINBYTES8
      case 'T': case 'U': case 0x96: { // BINSTRING / SHORT_BINSTRING / BYTEARRAY8
        const size_t len_bytes = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
        uint64_t n = read_uint(len_bytes);
        if (op == 'T' && (n & 0x80000000u)) fail("BINSTRING with a negative length");
        if (n > size_ - pos_) fail("pickle is truncated: a " + std::to_string(n) + "-byte string runs past the end");
        const std::byte* p = take(n);
        const bool is_bytes = op == 'B' || op == 'C' || op == 0x8e || op == 0x96;
        push(make_str(std::string(reinterpret_cast<const char*>(p), n), is_bytes ? Kind::Bytes : Kind::Str));
        break;
      }
      case 'V': {  // UNICODE (raw-unicode-escape text)
        std::string out;
        if (!decode_raw_unicode_escape(line(), out)) fail("bad raw-unicode-escape string");
        push(make_str(std::move(out)));
        break;
      }
      case '}': push(make_value(Kind::Dict)); break;
      case ']': push(make_value(Kind::List)); break;
      case ')': push(make_value(Kind::Tuple)); break;
      case 0x8f: push(make_value(Kind::Set)); break;  // EMPTY_SET
      case 'd': {  // DICT
        auto items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        auto d = make_value(Kind::Dict);
        for (size_t i = 0; i < items.size(); i += 2) set_item(*d, items[i], items[i + 1]);
        push(d);
        break;
      }
      case 'l': push(make_seq(Kind::List, pop_mark())); break;  // LIST
      case 't': push(make_seq(Kind::Tuple, pop_mark())); break;  // TUPLE
      case 0x91: push(make_seq(Kind::Set, pop_mark())); break;  // FROZENSET
      case 0x85: case 0x86: case 0x87: {  // TUPLE1/2/3
        std::vector<PickleRef> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_seq(Kind::Tuple, std::move(items)));
        break;
      }
      case 'a': {  // APPEND
        PickleRef v = pop();
        append_to(*top(), std::move(v));
        break;
      }
      case 'e': case 0x90: {  // APPENDS / ADDITEMS
        auto items = pop_mark();
        PickleRef& target = top();
        if (op == 0x90 && target->kind != Kind::Set) fail("ADDITEMS target is not a set");
        for (auto& v : items) append_to(*target, std::move(v));
        break;
      }
      case 's': {  // SETITEM
        PickleRef v = pop(), k = pop();
        set_item(*top(), std::move(k), std::move(v));
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        PickleRef& target = top();
        for (size_t i = 0; i < items.size(); i += 2) set_item(*target, items[i], items[i + 1]);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module(line());
        std::string name(line());
        push(make_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleRef name = pop(), module = pop();
        if (module->kind != Kind::Str || name->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        push(make_global(module->s, name->s));
        break;
      }
      case 'R': {  // REDUCE
        PickleRef args = pop(), callable = pop();
        push(call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only containers
        PickleRef args = pop(), cls = pop();
        if (cls->kind != Kind::Global || (cls->s != "collections.OrderedDict" && cls->s.find("set") == std::string::npos))
          fail("NEWOBJ of " + cls->type_name() + " is not supported");
        push(cls->s == "collections.OrderedDict" ? make_value(Kind::Dict) : make_value(Kind::Set));
        break;
      }
      case 'b': {  // BUILD: object state. Dicts (OrderedDict._metadata) and tensors: ignored.
        PickleRef state = pop();
        Kind k = top()->kind;
        if (k != Kind::Dict && k != Kind::Tensor && k != Kind::Set) fail("BUILD on a " + top()->type_name() + " is not supported");
        break;
      }
      case 'p': {  // PUT (text)
        int64_t i = 0;
        if (!parse_int(line(), i) || i < 0) fail("bad PUT index");
        memo_put(static_cast<uint64_t>(i));
        break;
      }
      case 'q': memo_put(read_uint(1)); break;  // BINPUT
      case 'r': memo_put(read_uint(4)); break;  // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'g': {  // GET (text)
        int64_t i = 0;
        if (!parse_int(line(), i) || i < 0) fail("bad GET index");
        push(memo_get(static_cast<uint64_t>(i)));
        break;
      }
      case 'h': push(memo_get(read_uint(1))); break;  // BINGET
      case 'j': push(memo_get(read_uint(4))); break;  // LONG_BINGET
      case 'Q': case 'P': {  // BINPERSID / PERSID
        PickleRef pid = op == 'Q' ? pop() : make_str(std::string(line()));
        if (!persistent_load_) fail("unexpected persistent id (no storages in this context)");
        push(persistent_load_(pid));
        break;
      }
      default: {
        const char* name = opcode_name(op);
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex + (name ? std::string(" (") + name + ")" : std::string()));
      }
    }
  }
}

}  // namespace omnibind::tensor_io
