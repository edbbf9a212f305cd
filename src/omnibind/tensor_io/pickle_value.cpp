#include "omnibind/tensor_io/pickle_value.h"

#include <cstring>

namespace omnibind::tensor_io {

PickleValue::~PickleValue() {
  // Children whose last reference is ours are emptied one level at a time through a work list,
  // so a pickle nested a million levels deep is freed without recursion.
  if (items.empty()) return;
  std::vector<PickleRef> work = std::move(items);
  while (!work.empty()) {
    PickleRef v = std::move(work.back());
    work.pop_back();
    if (v && v.use_count() == 1 && !v->items.empty()) {
      for (auto& c : v->items) work.push_back(std::move(c));
      v->items.clear();
    }
  }
}

namespace {

// Keys are hashed on every SETITEM; bounding their size keeps a hostile pickle that re-inserts a
// huge key through the memo from costing quadratic time. Real checkpoint keys are short names.
constexpr size_t kMaxKeyBytes = 1024, kMaxTupleKeyItems = 8;

// A fingerprint that equals for keys Python would consider equal (for the scalar kinds we allow;
// bool True == 1 as in Python). Empty string: unhashable or too large.
std::string tagged(char tag, std::string_view body) {
  std::string out(1, tag);
  out.append(body.data(), body.size());
  return out;
}

std::string key_fingerprint(const PickleValue& k) {
  using K = PickleValue::Kind;
  if (k.s.size() > kMaxKeyBytes) return "";
  switch (k.kind) {
    case K::None: return "N";
    case K::Bool: return k.b ? "I1" : "I0";
    case K::Int: return tagged('I', std::to_string(k.i));
    case K::BigInt: return tagged('L', k.s);
    case K::Float: {
      // Range check first: casting NaN or a huge double to int64 is undefined.
      if (k.f > -9.2e18 && k.f < 9.2e18 && k.f == static_cast<double>(static_cast<int64_t>(k.f)))
        return tagged('I', std::to_string(static_cast<int64_t>(k.f)));
      char buf[sizeof(double)];
      std::memcpy(buf, &k.f, sizeof buf);
      return tagged('F', std::string_view(buf, sizeof buf));
    }
    case K::Str: return tagged('S', k.s);
    case K::Bytes: return tagged('B', k.s);
    case K::Global: return tagged('G', k.s);
    case K::Tuple: {
      if (k.items.size() > kMaxTupleKeyItems) return "";
      std::string out = tagged('T', std::to_string(k.items.size()));
      out += '(';
      for (auto& c : k.items) {
        if (c->kind == K::Tuple) return "";  // one level is enough for real checkpoints
        std::string f = key_fingerprint(*c);
        if (f.empty()) return "";
        out += std::to_string(f.size());
        out += ':';
        out += f;
      }
      out += ')';
      return out;
    }
    default: return "";
  }
}

}  // namespace

PickleRef PickleValue::dict_get(const std::string& key) const {
  auto it = dict_index.find(tagged('S', key));
  return it == dict_index.end() ? nullptr : items[2 * it->second + 1];
}

bool PickleValue::dict_set(PickleRef key, PickleRef value) {
  std::string fp = key_fingerprint(*key);
  if (fp.empty()) return false;
  auto [it, fresh] = dict_index.emplace(std::move(fp), dict_size());
  if (fresh) {
    items.push_back(std::move(key));
    items.push_back(std::move(value));
  } else {
    items[2 * it->second + 1] = std::move(value);
  }
  return true;
}

std::string PickleValue::type_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "global " + s;
    case Kind::Storage: return "torch storage";
    case Kind::Tensor: return "torch.Tensor";
  }
  return "?";
}

std::string PickleValue::repr(size_t max_len) const {
  std::string out;
  switch (kind) {
    case Kind::None: out = "None"; break;
    case Kind::Bool: out = b ? "True" : "False"; break;
    case Kind::Int: out = std::to_string(i); break;
    case Kind::Float: out = std::to_string(f); break;
    case Kind::Str: out = "'" + s + "'"; break;
    case Kind::Bytes: out = "b'...' (" + std::to_string(s.size()) + " bytes)"; break;
    default: out = type_name(); break;
  }
  if (out.size() > max_len) out = out.substr(0, max_len) + "...";
  return out;
}

PickleRef make_value(PickleValue::Kind kind) { return std::make_shared<PickleValue>(kind); }

PickleRef make_int(int64_t v) {
  auto p = make_value(PickleValue::Kind::Int);
  p->i = v;
  return p;
}

PickleRef make_str(std::string s, PickleValue::Kind kind) {
  auto p = make_value(kind);
  p->s = std::move(s);
  return p;
}

}  // namespace omnibind::tensor_io
