// OpenShape / OmniBind point clouds saved with np.save(dict): a .npy whose payload is a pickled
// 0-d object array holding {'xyz': float array [N,3], 'rgb': [N,3], ...other keys}.
// A minimal pickle machine that only builds values (never calls anything): the only globals it
// accepts are numpy's array reconstruction (_reconstruct, ndarray) and numpy.dtype, which it
// interprets itself. tensor_io's SafeUnpickler implements torch's allowlist, which has no numpy
// types; this one is the numpy counterpart, restricted to what np.save writes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "omnibind/media/half_float.h"
#include "omnibind/media/point_cloud.h"
#include "omnibind/media/point_cloud_text.h"

namespace omnibind::media {
namespace {

struct Val;
using Ref = std::shared_ptr<Val>;
struct Val {
  enum Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Array, DType } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;                    // Str/Bytes; Global "module.name"; DType "f4"
  char byteorder = '=';             // DType
  std::vector<Ref> items;           // Tuple/List; Dict: k0, v0, k1, v1...
  std::vector<int64_t> shape;       // Array
  Ref dtype;                        // Array
  std::string data;                 // Array raw bytes (numeric dtypes)
  int depth = 0;
};

constexpr int kMaxDepth = 64;
constexpr size_t kMaxStack = 1 << 20;

class NpyUnpickler {
 public:
  NpyUnpickler(std::string_view bytes, std::string name) : b_(bytes), name_(std::move(name)) {}

  Ref load() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                       // PROTO
        case 0x95: take(8); break;                    // FRAME
        case '.': if (stack_.empty()) fail("empty stack at STOP"); return pop();
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': push(make(Val::None)); break;
        case 0x88: case 0x89: { auto v = make(Val::Bool); v->i = op == 0x88; push(v); break; }
        case 'J': { int32_t x; std::memcpy(&x, take(4), 4); push_int(x); break; }
        case 'K': push_int(u8()); break;
        case 'M': { uint16_t x; std::memcpy(&x, take(2), 2); push_int(x); break; }
        case 0x8a: {                                  // LONG1 (small two's complement ints only)
          size_t n = u8();
          if (n > 8) fail("integer too large");
          const unsigned char* p = reinterpret_cast<const unsigned char*>(take(n));
          int64_t x = 0;
          for (size_t k = 0; k < n; ++k) x |= static_cast<int64_t>(p[k]) << (8 * k);
          if (n > 0 && n < 8 && (p[n - 1] & 0x80)) x -= int64_t{1} << (8 * n);
          push_int(x);
          break;
        }
        case 'G': {                                   // BINFLOAT, big endian
          unsigned char p[8];
          std::memcpy(p, take(8), 8);
          std::reverse(p, p + 8);
          auto v = make(Val::Float);
          std::memcpy(&v->f, p, 8);
          push(v);
          break;
        }
        case 'C': push_str(Val::Bytes, u8()); break;
        case 'B': { uint32_t n; std::memcpy(&n, take(4), 4); push_str(Val::Bytes, n); break; }
        case 0x8e: { uint64_t n; std::memcpy(&n, take(8), 8); push_str(Val::Bytes, n); break; }
        case 0x8c: push_str(Val::Str, u8()); break;
        case 'X': { uint32_t n; std::memcpy(&n, take(4), 4); push_str(Val::Str, n); break; }
        case 0x8d: { uint64_t n; std::memcpy(&n, take(8), 8); push_str(Val::Str, n); break; }
        case ')': push(make(Val::Tuple)); break;
        case ']': push(make(Val::List)); break;
        case '}': push(make(Val::Dict)); break;
        case 't': case 'l': case 'd': {
          auto items = pop_mark();
          auto v = make(op == 't' ? Val::Tuple : op == 'l' ? Val::List : Val::Dict);
          if (op == 'd' && items.size() % 2) fail("odd DICT");
          for (auto& x : items) add_child(*v, x);
          push(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {
          size_t n = op - 0x84;
          if (stack_.size() < n) fail("stack underflow");
          auto v = make(Val::Tuple);
          for (size_t k = stack_.size() - n; k < stack_.size(); ++k) add_child(*v, stack_[k]);
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case 'a': { auto x = pop(); container(Val::List).items.push_back(x); check_depth(top(), x); break; }
        case 'e': { auto xs = pop_mark(); auto& l = container(Val::List); for (auto& x : xs) { l.items.push_back(x); check_depth(top(), x); } break; }
        case 's': { auto v = pop(), k = pop(); auto& d = container(Val::Dict); d.items.push_back(k); d.items.push_back(v); check_depth(top(), v); break; }
        case 'u': {
          auto xs = pop_mark();
          if (xs.size() % 2) fail("odd SETITEMS");
          auto& d = container(Val::Dict);
          for (auto& x : xs) { d.items.push_back(x); check_depth(top(), x); }
          break;
        }
        case 'q': memo_[u8()] = top(); break;
        case 'r': { uint32_t n; std::memcpy(&n, take(4), 4); memo_[n] = top(); break; }
        case 0x94: { uint32_t n = static_cast<uint32_t>(memo_.size()); memo_[n] = top(); break; }
        case 'h': push(memo(u8())); break;
        case 'j': { uint32_t n; std::memcpy(&n, take(4), 4); push(memo(n)); break; }
        case 'c': {
          std::string mod = line(), nm = line();
          push(global(mod, nm));
          break;
        }
        case 0x93: {
          auto nm = pop(), mod = pop();
          if (mod->kind != Val::Str || nm->kind != Val::Str) fail("bad STACK_GLOBAL");
          push(global(mod->s, nm->s));
          break;
        }
        case 'R': { auto args = pop(), fn = pop(); push(reduce(fn, args)); break; }
        case 'b': { auto state = pop(); build(top(), state); break; }
        default:
          fail("unsupported pickle opcode 0x" + hex(op));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(name_ + ": cannot read the pickled .npy payload (" + what + " at byte " + std::to_string(pos_) + ")");
  }
  static std::string hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }
  const char* take(size_t n) {
    if (n > b_.size() - pos_) fail("truncated");
    const char* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1)); }
  std::string line() {
    size_t e = b_.find('\n', pos_);
    if (e == std::string_view::npos || e - pos_ > 256) fail("bad GLOBAL");
    std::string s(b_.substr(pos_, e - pos_));
    pos_ = e + 1;
    return s;
  }
  Ref make(Val::Kind k) {
    auto v = std::make_shared<Val>();
    v->kind = k;
    return v;
  }
  void push(Ref v) {
    if (stack_.size() >= kMaxStack) fail("stack too deep");
    stack_.push_back(std::move(v));
  }
  void push_int(int64_t x) { auto v = make(Val::Int); v->i = x; push(v); }
  void push_str(Val::Kind k, uint64_t n) {
    if (n > b_.size() - pos_) fail("truncated string");
    auto v = make(k);
    v->s.assign(take(n), n);
    push(v);
  }
  Ref pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    Ref v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Ref& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("missing MARK");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> xs(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return xs;
  }
  Val& container(Val::Kind k) {
    Ref& t = top();
    if (t->kind != k) fail("append/setitem on a non-container");
    return *t;
  }
  void check_depth(const Ref& parent, const Ref& child) {
    parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > kMaxDepth) fail("nesting too deep");
  }
  void add_child(Val& parent, const Ref& child) {
    parent.items.push_back(child);
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxDepth) fail("nesting too deep");
  }
  Ref memo(uint32_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("unknown memo key");
    return it->second;
  }
  Ref global(const std::string& mod, const std::string& nm) {
    const std::string q = mod + "." + nm;
    if (q != "numpy.core.multiarray._reconstruct" && q != "numpy._core.multiarray._reconstruct" && q != "numpy.ndarray" &&
        q != "numpy.dtype")
      fail("refusing the global " + q.substr(0, 80));
    auto v = make(Val::Global);
    v->s = q;
    return v;
  }
  Ref reduce(const Ref& fn, const Ref& args) {
    if (fn->kind != Val::Global || args->kind != Val::Tuple) fail("bad REDUCE");
    if (fn->s.size() > 12 && fn->s.substr(fn->s.size() - 12) == "_reconstruct") return make(Val::Array);
    if (fn->s == "numpy.dtype" && !args->items.empty() && args->items[0]->kind == Val::Str) {
      auto d = make(Val::DType);
      d->s = args->items[0]->s;
      return d;
    }
    fail("refusing to call " + fn->s);
  }
  void build(const Ref& obj, const Ref& state) {
    if (state->kind != Val::Tuple) fail("bad BUILD state");
    const auto& st = state->items;
    if (obj->kind == Val::DType) {
      if (st.size() > 1 && st[1]->kind == Val::Str && st[1]->s.size() == 1) obj->byteorder = st[1]->s[0];
      return;
    }
    if (obj->kind != Val::Array || st.size() != 5 || st[1]->kind != Val::Tuple || st[2]->kind != Val::DType)
      fail("bad ndarray state");
    for (const auto& d : st[1]->items) {
      if (d->kind != Val::Int || d->i < 0) fail("bad ndarray shape");
      obj->shape.push_back(d->i);
    }
    obj->dtype = st[2];
    if (st[3]->kind == Val::Bool && st[3]->i) fail("Fortran-ordered arrays are not supported");
    if (st[4]->kind == Val::Bytes || st[4]->kind == Val::Str) obj->data = st[4]->s;
    else if (st[4]->kind == Val::List) obj->items = st[4]->items;  // object arrays
    else fail("bad ndarray data");
  }

  std::string_view b_;
  std::string name_;
  size_t pos_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Ref> memo_;
};


// A numeric [N, 3] array -> floats.
std::vector<float> array_rows(const Val& a, const std::string& key, const std::string& name) {
  if (a.kind != Val::Array || !a.dtype) throw InputError(name + ": '" + key + "' is not a numpy array");
  if (a.shape.size() != 2 || a.shape[1] != 3)
    throw InputError(name + ": '" + key + "' must have shape [N, 3]");
  const std::string& t = a.dtype->s;
  int size = t == "f2" ? 2 : t == "f4" ? 4 : t == "f8" ? 8 : t == "u1" ? 1 : 0;
  if (!size) throw InputError(name + ": '" + key + "' has dtype '" + t + "' (expected float16/32/64 or uint8)");
  const bool swap = a.dtype->byteorder == '>';
  const size_t count = static_cast<size_t>(a.shape[0]) * 3;
  if (a.data.size() != count * size) throw InputError(name + ": '" + key + "' data size does not match its shape");
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    unsigned char b[8];
    for (int j = 0; j < size; ++j) b[j] = static_cast<unsigned char>(a.data[i * size + (swap ? size - 1 - j : j)]);
    if (size == 1) out[i] = b[0] / 255.0f;
    else if (size == 2) { uint16_t h; std::memcpy(&h, b, 2); out[i] = half_to_float(h); }
    else if (size == 4) std::memcpy(&out[i], b, 4);
    else { double d; std::memcpy(&d, b, 8); out[i] = static_cast<float>(d); }
  }
  return out;
}

}  // namespace

PointCloud read_pickled_npy_cloud(std::string_view payload, const std::string& name) {
  NpyUnpickler up(payload, name);
  Ref root = up.load();
  // np.save(dict) -> a 0-d object array whose single element is the dict.
  if (root->kind == Val::Array && root->items.size() == 1) root = root->items[0];
  if (root->kind != Val::Dict) throw InputError(name + ": pickled .npy does not hold a dict with 'xyz' (and 'rgb')");
  Ref xyz, rgb;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const auto& key = root->items[k];
    if (key->kind != Val::Str) continue;
    if (key->s == "xyz") xyz = root->items[k + 1];
    if (key->s == "rgb") rgb = root->items[k + 1];
  }
  if (!xyz) throw InputError(name + ": pickled .npy dict has no 'xyz' array");
  PointCloud pc;
  pc.xyz = array_rows(*xyz, "xyz", name);
  if (rgb) {
    pc.rgb = array_rows(*rgb, "rgb", name);
    if (pc.rgb.size() != pc.xyz.size()) throw InputError(name + ": 'rgb' and 'xyz' have different numbers of points");
    pc.had_colour = true;
    float mx = 0;
    for (float v : pc.rgb) mx = std::max(mx, v);
    if (mx > 1.0f && rgb->dtype->s != "u1")
      for (float& v : pc.rgb) v /= 255.0f;  // colours stored as 0..255
  } else {
    pc.rgb.assign(pc.xyz.size(), kDefaultPointColour);
  }
  return pc;
}

}  // namespace omnibind::media
