// Test helpers that build torch.save-like files byte by byte: a hand-written pickle for a small
// state dict and a minimal zip writer (stored or deflated entries, optional ZIP64 records).
#pragma once
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace omnibind::testkit::torchfiles {

inline void put16(std::string& s, uint16_t v) { s += char(v & 0xff), s += char(v >> 8); }
inline void put32(std::string& s, uint32_t v) { put16(s, v & 0xffff), put16(s, v >> 16); }
inline void put64(std::string& s, uint64_t v) { put32(s, uint32_t(v)), put32(s, uint32_t(v >> 32)); }

// Pickle pieces (protocol 2).
inline std::string unicode(const std::string& s) {  // BINUNICODE
  std::string out = "X";
  put32(out, uint32_t(s.size()));
  return out + s;
}
inline std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
inline std::string int1(uint8_t v) { return std::string("K") + char(v); }

// _rebuild_tensor_v2(('storage', storage_type, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
inline std::string tensor_call(const std::string& storage_type, const std::string& key, uint8_t numel, uint8_t offset,
                               const std::vector<uint8_t>& size, const std::vector<uint8_t>& stride) {
  std::string p = global("torch._utils", "_rebuild_tensor_v2") + "((" + unicode("storage") + global("torch", storage_type) +
                  unicode(key) + unicode("cpu") + int1(numel) + "tQ" + int1(offset) + "(";
  for (auto v : size) p += int1(v);
  p += "t(";
  for (auto v : stride) p += int1(v);
  p += "t\x89" + global("collections", "OrderedDict") + ")Rt" + "R";
  return p;
}

// OrderedDict{name: tensor_pickle...}
inline std::string state_dict_pickle(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string p = "\x80\x02" + global("collections", "OrderedDict") + ")R(";
  for (auto& [name, value] : items) p += unicode(name) + value;
  return p + "u.";
}

inline std::string raw_deflate(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, uLong(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct ZipItem {
  std::string name, data;
};

// A zip archive; `deflate` compresses every entry, `zip64` writes ZIP64 central records.
inline std::string make_zip(const std::vector<ZipItem>& items, bool deflate = false, bool zip64 = false) {
  std::string out, cd;
  for (auto& it : items) {
    const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(it.data.data()), uInt(it.data.size())));
    const std::string body = deflate ? raw_deflate(it.data) : it.data;
    const uint64_t offset = out.size();
    put32(out, 0x04034b50), put16(out, 20), put16(out, 0), put16(out, deflate ? 8 : 0), put32(out, 0);
    put32(out, crc), put32(out, uint32_t(body.size())), put32(out, uint32_t(it.data.size()));
    put16(out, uint16_t(it.name.size())), put16(out, 0);
    out += it.name + body;
    put32(cd, 0x02014b50), put16(cd, 45), put16(cd, 45), put16(cd, 0), put16(cd, deflate ? 8 : 0), put32(cd, 0);
    put32(cd, crc);
    put32(cd, zip64 ? 0xFFFFFFFF : uint32_t(body.size())), put32(cd, zip64 ? 0xFFFFFFFF : uint32_t(it.data.size()));
    put16(cd, uint16_t(it.name.size())), put16(cd, zip64 ? 28 : 0), put16(cd, 0), put16(cd, 0), put16(cd, 0), put32(cd, 0);
    put32(cd, zip64 ? 0xFFFFFFFF : uint32_t(offset));
    cd += it.name;
    if (zip64) put16(cd, 1), put16(cd, 24), put64(cd, it.data.size()), put64(cd, body.size()), put64(cd, offset);
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (zip64) {
    const uint64_t rec = out.size();
    put32(out, 0x06064b50), put64(out, 44), put16(out, 45), put16(out, 45), put32(out, 0), put32(out, 0);
    put64(out, items.size()), put64(out, items.size()), put64(out, cd.size()), put64(out, cd_offset);
    put32(out, 0x07064b50), put32(out, 0), put64(out, rec), put32(out, 1);
  }
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0);
  put16(out, zip64 ? 0xFFFF : uint16_t(items.size())), put16(out, zip64 ? 0xFFFF : uint16_t(items.size()));
  put32(out, zip64 ? 0xFFFFFFFF : uint32_t(cd.size())), put32(out, zip64 ? 0xFFFFFFFF : uint32_t(cd_offset)), put16(out, 0);
  return out;
}

inline std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

inline std::string write(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace omnibind::testkit::torchfiles
