#include "omnibind/tensor_io/torch_writer.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::tensor_io {

namespace {

constexpr const char* kArchive = "archive";
constexpr uint64_t kAlign = 64;  // torch aligns every entry's data to 64 bytes
constexpr uint32_t k32 = 0xFFFFFFFFu;

// Strict UTF-8 (what Python's decoder accepts): no overlongs, no surrogates, <= U+10FFFF.
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len = 0;
    unsigned cp = 0;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

const char* storage_class(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "BoolStorage";
    case DType::U8: return "ByteStorage";
    case DType::I8: return "CharStorage";
    case DType::I16: return "ShortStorage";
    case DType::I32: return "IntStorage";
    case DType::I64: return "LongStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::F32: return "FloatStorage";
    case DType::F64: return "DoubleStorage";
  }
  return "FloatStorage";
}

void put16(std::string& s, uint16_t v) { s += char(v & 0xff), s += char(v >> 8); }
void put32(std::string& s, uint32_t v) { put16(s, uint16_t(v & 0xffff)), put16(s, uint16_t(v >> 16)); }
void put64(std::string& s, uint64_t v) { put32(s, uint32_t(v)), put32(s, uint32_t(v >> 32)); }

// The subset of pickle protocol 2 torch.save emits for a state dict, with the same memoisation of
// globals and repeated strings (BINPUT once, BINGET afterwards).
class Pickler {
 public:
  std::string out = std::string("\x80\x02", 2);

  void global(const std::string& module, const std::string& name) {
    if (get(module + "\n" + name)) return;
    out += 'c' + module + '\n' + name + '\n';
    put(module + "\n" + name);
  }
  void memo_string(const std::string& s) {
    if (get("\x01" + s)) return;
    string(s);
    put("\x01" + s);
  }
  void string(const std::string& s) {  // BINUNICODE
    out += 'X';
    put32(out, uint32_t(s.size()));
    out += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      out += 'K', out += char(v);
    } else if (v >= 0 && v <= 0xffff) {
      out += 'M', put16(out, uint16_t(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out += 'J', put32(out, uint32_t(int32_t(v)));
    } else {  // LONG1: minimal little-endian two's complement
      std::string bytes;
      uint64_t u = uint64_t(v);
      for (int i = 0; i < 8; ++i) bytes += char((u >> (8 * i)) & 0xff);
      while (bytes.size() > 1) {
        const auto last = static_cast<unsigned char>(bytes.back());
        const auto prev = static_cast<unsigned char>(bytes[bytes.size() - 2]);
        if ((last == 0x00 && !(prev & 0x80)) || (last == 0xff && (prev & 0x80))) bytes.pop_back();
        else break;
      }
      out += '\x8a', out += char(bytes.size()), out += bytes;
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) { out += ')'; return; }
    if (v.size() > 3) out += '(';
    for (auto x : v) integer(x);
    out += v.size() == 1 ? '\x85' : v.size() == 2 ? '\x86' : v.size() == 3 ? '\x87' : 't';
  }

 private:
  std::map<std::string, uint32_t> memo_;
  bool get(const std::string& key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return false;
    if (it->second < 256) out += 'h', out += char(it->second);
    else out += 'j', put32(out, it->second);
    return true;
  }
  uint32_t next_ = 0;
  void put(const std::string& key) { memo_[key] = next_, anonymous_put(); }

 public:
  void anonymous_put() {  // memoises the object on top of the stack without a name to find it by
    const uint32_t idx = next_++;
    if (idx < 256) out += 'q', out += char(idx);
    else out += 'r', put32(out, idx);
  }
};

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) s[d] = acc, acc *= std::max<int64_t>(shape[d], 1);
  return s;
}

// One storage to write: the tensor whose elements it holds (row-major).
struct Storage {
  const RawTensor* tensor;
  uint64_t bytes;
};

class ZipOut {
 public:
  ZipOut(std::string path, std::string shown, bool force_zip64)
      : path_(std::move(path)), shown_(std::move(shown)), force64_(force_zip64) {
    f_ = std::fopen(path_.c_str(), "wb");
    if (!f_) throw InputError("cannot write " + shown_ + ": " + std::strerror(errno));
  }
  ~ZipOut() {
    if (f_) std::fclose(f_);
  }

  // Starts a STORED entry of `size` bytes; the data follows through write(); end_entry() patches the CRC.
  void begin_entry(const std::string& name, uint64_t size) {
    Entry e;
    e.name = name;
    e.size = size;
    e.offset = pos_;
    e.zip64 = force64_ || size >= k32 || pos_ >= k32;
    std::string h;
    put32(h, 0x04034b50);
    put16(h, e.zip64 ? 45 : 20);
    put16(h, 0);       // flags
    put16(h, 0);       // stored
    put16(h, 0);       // time
    put16(h, 0x0021);  // date: 1980-01-01 (fixed: same inputs -> same bytes)
    e.crc_pos = pos_ + h.size();
    put32(h, 0);  // crc, patched later
    put32(h, e.zip64 ? k32 : uint32_t(size));
    put32(h, e.zip64 ? k32 : uint32_t(size));
    put16(h, uint16_t(name.size()));
    const size_t extra_len_at = h.size();
    put16(h, 0);
    h += name;
    std::string extra;
    if (e.zip64) {
      put16(extra, 0x0001), put16(extra, 16), put64(extra, size), put64(extra, size);
    }
    const uint64_t before_pad = pos_ + h.size() + extra.size() + 4;
    const uint64_t pad = (kAlign - before_pad % kAlign) % kAlign;
    put16(extra, 0x4246), put16(extra, uint16_t(pad));  // "FB" padding field, as torch writes it
    extra.append(pad, 'Z');
    h[extra_len_at] = char(extra.size() & 0xff), h[extra_len_at + 1] = char(extra.size() >> 8);
    h += extra;
    raw(h.data(), h.size());
    data_start_ = pos_;
    crc_ = ::crc32(0L, Z_NULL, 0);
    entries_.push_back(std::move(e));
  }
  void write(const void* data, size_t n) {
    const auto* p = static_cast<const Bytef*>(data);
    for (size_t done = 0; done < n;) {
      const size_t chunk = std::min<size_t>(n - done, size_t(1) << 30);
      crc_ = ::crc32(crc_, p + done, uInt(chunk));
      done += chunk;
    }
    raw(data, n);
  }
  void end_entry() {
    auto& e = entries_.back();
    if (pos_ - data_start_ != e.size) throw std::logic_error("torch_writer: entry '" + e.name + "' size mismatch");
    e.crc = uint32_t(crc_);
  }

  void finish() {
    // Patch the CRCs into the local headers, then append the central directory.
    for (auto& e : entries_) {
      std::string c;
      put32(c, e.crc);
      if (fseeko(f_, off_t(e.crc_pos), SEEK_SET) != 0 || std::fwrite(c.data(), 1, 4, f_) != 4) io_error();
    }
    if (fseeko(f_, off_t(pos_), SEEK_SET) != 0) io_error();
    const uint64_t cd_offset = pos_;
    for (auto& e : entries_) {
      std::string h;
      put32(h, 0x02014b50);
      put16(h, e.zip64 ? 45 : 20);  // made by (MS-DOS attributes)
      put16(h, e.zip64 ? 45 : 20);
      put16(h, 0), put16(h, 0), put16(h, 0), put16(h, 0x0021);
      put32(h, e.crc);
      put32(h, e.zip64 ? k32 : uint32_t(e.size));
      put32(h, e.zip64 ? k32 : uint32_t(e.size));
      put16(h, uint16_t(e.name.size()));
      put16(h, e.zip64 ? 28 : 0);
      put16(h, 0), put16(h, 0), put16(h, 0), put32(h, 0);
      put32(h, e.zip64 ? k32 : uint32_t(e.offset));
      h += e.name;
      if (e.zip64) put16(h, 0x0001), put16(h, 24), put64(h, e.size), put64(h, e.size), put64(h, e.offset);
      raw(h.data(), h.size());
    }
    const uint64_t cd_size = pos_ - cd_offset;
    const uint64_t n = entries_.size();
    std::string t;
    const bool zip64 = force64_ || n >= 0xFFFF || cd_offset >= k32 || cd_size >= k32;
    if (zip64) {
      const uint64_t eocd64 = pos_;
      put32(t, 0x06064b50), put64(t, 44), put16(t, 45), put16(t, 45), put32(t, 0), put32(t, 0);
      put64(t, n), put64(t, n), put64(t, cd_size), put64(t, cd_offset);
      put32(t, 0x07064b50), put32(t, 0), put64(t, eocd64), put32(t, 1);
    }
    put32(t, 0x06054b50), put16(t, 0), put16(t, 0);
    put16(t, zip64 ? 0xFFFF : uint16_t(n)), put16(t, zip64 ? 0xFFFF : uint16_t(n));
    put32(t, zip64 ? k32 : uint32_t(cd_size)), put32(t, zip64 ? k32 : uint32_t(cd_offset));
    put16(t, 0);
    raw(t.data(), t.size());
    if (std::fflush(f_) != 0) io_error();
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) io_error();
  }

 private:
  struct Entry {
    std::string name;
    uint64_t size = 0, offset = 0, crc_pos = 0;
    uint32_t crc = 0;
    bool zip64 = false;
  };
  void raw(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) io_error();
    pos_ += n;
  }
  [[noreturn]] void io_error() {
    throw InputError("cannot write " + shown_ + ": " + (errno ? std::strerror(errno) : "I/O error"));
  }

  std::string path_, shown_;
  bool force64_;
  std::FILE* f_ = nullptr;
  uint64_t pos_ = 0, data_start_ = 0;
  uLong crc_ = 0;
  std::vector<Entry> entries_;
};

// Streams the tensor's elements in row-major order (gathering strided views in 1 MiB chunks).
void write_row_major(ZipOut& zip, const RawTensor& t) {
  const size_t es = dtype_size(t.dtype);
  const int64_t n = t.numel();
  if (n == 0) return;
  const std::byte* base = t.data + t.storage_offset * int64_t(es);
  if (t.is_contiguous()) {
    zip.write(base, size_t(n) * es);
    return;
  }
  const size_t rank = t.shape.size();
  const int64_t inner = t.shape[rank - 1], inner_stride = t.strides[rank - 1];
  std::vector<int64_t> idx(rank - 1, 0);
  std::vector<std::byte> buf;
  buf.reserve(size_t(1) << 20);
  for (int64_t row = 0, rows = n / inner; row < rows; ++row) {
    int64_t off = 0;
    for (size_t d = 0; d + 1 < rank; ++d) off += idx[d] * t.strides[d];
    const std::byte* src = base + off * int64_t(es);
    if (inner_stride == 1) {
      buf.insert(buf.end(), src, src + inner * int64_t(es));
    } else {
      for (int64_t i = 0; i < inner; ++i) {
        const std::byte* e = src + i * inner_stride * int64_t(es);
        buf.insert(buf.end(), e, e + es);
      }
    }
    if (buf.size() >= (size_t(1) << 20)) zip.write(buf.data(), buf.size()), buf.clear();
    for (int d = int(rank) - 2; d >= 0; --d) {
      if (++idx[size_t(d)] < t.shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
  if (!buf.empty()) zip.write(buf.data(), buf.size());
}

std::string identity_key(const RawTensor& t) {
  std::string k(reinterpret_cast<const char*>(&t.data), sizeof(t.data));
  k += char(t.dtype);
  put64(k, uint64_t(t.storage_offset));
  put64(k, t.shape.size());
  for (auto v : t.shape) put64(k, uint64_t(v));
  for (auto v : (t.strides.empty() ? row_major_strides(t.shape) : t.strides)) put64(k, uint64_t(v));
  return k;
}

// A metadata key becomes one path component of a zip entry name: keep it to a portable alphabet.
bool valid_metadata_key(const std::string& k) {
  if (k.empty() || k.size() > 128 || k == "." || k == "..") return false;
  for (unsigned char c : k)
    if (!std::isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

}  // namespace

void write_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                            const TorchWriteOptions& options) {
  // Validate everything and assign storages before touching the file system.
  for (const auto& [key, value] : options.metadata)
    if (!valid_metadata_key(key))
      throw InputError(path + ": metadata key '" + key.substr(0, 64) +
                       "' cannot name a zip record (use 1-128 characters of A-Z a-z 0-9 _ . -)");
  std::set<std::string> names;
  std::map<std::string, size_t> storage_of_identity;
  std::vector<Storage> storages;
  std::vector<size_t> storage_index;
  for (auto& [name, t] : tensors) {
    if (!valid_utf8(name)) throw InputError(path + ": tensor name is not valid UTF-8 (torch.load could not read it)");
    if (!names.insert(name).second) throw InputError(path + ": duplicate tensor name '" + name + "'");
    if (t.numel() > 0 && !t.data) throw InputError(path + ": tensor '" + name + "' has no data");
    if (!t.strides.empty() && t.strides.size() != t.shape.size())
      throw InputError(path + ": tensor '" + name + "' has " + std::to_string(t.strides.size()) + " strides for shape " +
                       t.shape_string());
    auto [it, fresh] = storage_of_identity.emplace(identity_key(t), storages.size());
    if (fresh) storages.push_back({&t, uint64_t(t.numel()) * dtype_size(t.dtype)});
    storage_index.push_back(it->second);
  }

  Pickler p;
  p.global("collections", "OrderedDict");
  p.out += ")R";
  p.anonymous_put();  // the dict's memo slot, as torch's pickler writes it
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (i % 1000 == 0) p.out += '(';  // SETITEMS in batches of 1000, as Python's pickler does
    const auto& [name, t] = tensors[i];
    const Storage& s = storages[storage_index[i]];
    p.string(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.out += "((";
    p.memo_string("storage");
    p.global("torch", storage_class(t.dtype));
    p.string(std::to_string(storage_index[i]));
    p.memo_string("cpu");
    p.integer(s.tensor->numel());
    p.out += "tQ";
    p.integer(0);  // storage offset: each storage is the tensor's own compact copy
    p.int_tuple(t.shape);
    p.int_tuple(row_major_strides(t.shape));
    p.out += '\x89';  // requires_grad = False
    p.global("collections", "OrderedDict");
    p.out += ")Rt";  // backward_hooks = OrderedDict(); args tuple
    p.out += 'R';
    if (i % 1000 == 999 || i + 1 == tensors.size()) p.out += 'u';
  }
  p.out += '.';

  write_file_atomically(path, [&](const std::string& tmp) {
    ZipOut zip(tmp, path, options.force_zip64);
    const std::string prefix = std::string(kArchive) + "/";
    zip.begin_entry(prefix + "data.pkl", p.out.size());
    zip.write(p.out.data(), p.out.size());
    zip.end_entry();
    zip.begin_entry(prefix + "byteorder", 6);
    zip.write("little", 6);
    zip.end_entry();
    for (size_t k = 0; k < storages.size(); ++k) {
      zip.begin_entry(prefix + "data/" + std::to_string(k), storages[k].bytes);
      write_row_major(zip, *storages[k].tensor);
      zip.end_entry();
    }
    zip.begin_entry(prefix + "version", 2);
    zip.write("3\n", 2);
    zip.end_entry();
    // After everything torch reads; inside the archive folder, as torch requires of every record.
    for (const auto& [key, value] : options.metadata) {
      zip.begin_entry(prefix + "extra/" + key, value.size());
      zip.write(value.data(), value.size());
      zip.end_entry();
    }
    zip.finish();
  });
}

}  // namespace omnibind::tensor_io
