#include "omnibind/tensor_io/safetensors.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/mapped_file.h"

namespace omnibind::tensor_io {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // same bound as the reference implementation

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError(path + ": invalid safetensors file: " + what);
}

}  // namespace

bool looks_like_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char buf[9];
  if (!in.read(reinterpret_cast<char*>(buf), 9)) return false;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | buf[i];
  return n >= 2 && n <= kMaxHeaderBytes && buf[8] == '{';
}

SafetensorsFile read_safetensors(const std::string& path) {
  auto file = MappedFile::open(path);
  const size_t size = file->size();
  if (size < 8) fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(file->data());
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file (" + std::to_string(size) + " bytes)");
  const char* header_begin = reinterpret_cast<const char*>(file->data() + 8);
  nlohmann::ordered_json header;  // keeps the order the writer used
  try {
    header = nlohmann::ordered_json::parse(header_begin, header_begin + header_len);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  const std::byte* data = file->data() + 8 + header_len;
  const uint64_t data_len = size - 8 - header_len;
  SafetensorsFile out{StateDict(path), {}};
  std::shared_ptr<const void> owner = file;

  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(path, "__metadata__['" + k + "'] is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      fail(path, "tensor '" + name + "' lacks dtype/shape/data_offsets");
    RawTensor t;
    const auto& dt = entry["dtype"];
    if (!dt.is_string() || !dtype_from_name(dt.get<std::string>(), t.dtype))
      fail(path, "tensor '" + name + "' has unsupported dtype " + dt.dump());
    const auto& shape = entry["shape"];
    if (!shape.is_array()) fail(path, "tensor '" + name + "' shape is not an array");
    uint64_t numel = 1;
    for (auto& d : shape) {
      if (!d.is_number_unsigned()) fail(path, "tensor '" + name + "' has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / v)
        fail(path, "tensor '" + name + "' shape overflows");
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, "tensor '" + name + "' data_offsets must be two non-negative integers");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_len)
      fail(path, "tensor '" + name + "' byte range [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") lies outside the data section (" + std::to_string(data_len) + " bytes; file truncated?)");
    if (end - begin != numel * dtype_size(t.dtype))
      fail(path, "tensor '" + name + "' holds " + std::to_string(end - begin) + " bytes but shape " +
                     t.shape_string() + " of " + std::string(dtype_name(t.dtype)) + " needs " +
                     std::to_string(numel * dtype_size(t.dtype)));
    t.data = data + begin;
    t.storage_bytes = end - begin;
    t.owner = owner;
    out.tensors.add(name, std::move(t));
  }
  return out;
}

namespace {

// Appends the tensor's elements in row-major order, following its strides.
void append_row_major(std::string& buf, const RawTensor& t) {
  const size_t es = dtype_size(t.dtype);
  const int64_t n = t.numel();
  if (n == 0) return;
  const std::byte* base = t.data + t.storage_offset * static_cast<int64_t>(es);
  if (t.is_contiguous()) {
    buf.append(reinterpret_cast<const char*>(base), static_cast<size_t>(n) * es);
    return;
  }
  const size_t rank = t.shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * t.strides[d];
    buf.append(reinterpret_cast<const char*>(base + off * static_cast<int64_t>(es)), es);
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::string body;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__") throw InputError("tensor name '__metadata__' is reserved in safetensors");
    if (header.contains(name)) throw InputError("duplicate tensor name '" + name + "' for " + path);
    const size_t begin = body.size();
    append_row_major(body, t);
    nlohmann::ordered_json e;
    e["dtype"] = std::string(dtype_name(t.dtype));
    e["shape"] = t.shape;
    e["data_offsets"] = {begin, body.size()};
    header[name] = e;
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // data section 8-byte aligned
  std::string file(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  file += h;
  file += body;
  write_bytes_atomically(path, file);
}

}  // namespace omnibind::tensor_io
