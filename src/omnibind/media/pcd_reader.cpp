// PCL's PCD v0.5-0.7: DATA ascii, binary (point-major records) and binary_compressed (LZF, then
// field-major). Coordinates from fields x, y, z; colour from a packed `rgb`/`rgba` field
// (0x00RRGGBB in a float or uint32, /255) or separate r, g, b fields (integers /255).
#include <bit>
#include <cstring>

#include "omnibind/media/point_cloud.h"
#include "omnibind/media/point_cloud_text.h"

namespace omnibind::media {
namespace {

using detail::next_word;

struct Field {
  std::string name;
  int size = 4;
  char type = 'F';
  int count = 1;
  size_t offset = 0;  // in a point-major record
};

double read_scalar(const unsigned char* p, const Field& f) {
  switch (f.type) {
    case 'F':
      if (f.size == 4) { float v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { double v; std::memcpy(&v, p, 8); return v; }
      break;
    case 'U':
      if (f.size == 1) return p[0];
      if (f.size == 2) { uint16_t v; std::memcpy(&v, p, 2); return v; }
      if (f.size == 4) { uint32_t v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { uint64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
      break;
    case 'I':
      if (f.size == 1) { int8_t v; std::memcpy(&v, p, 1); return v; }
      if (f.size == 2) { int16_t v; std::memcpy(&v, p, 2); return v; }
      if (f.size == 4) { int32_t v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
      break;
  }
  return 0;
}

// Packed colour: the 4 bytes of the field reinterpreted as 0x00RRGGBB.
void unpack_rgb(const unsigned char* p, float* out) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  out[0] = static_cast<float>((v >> 16) & 0xff) / 255.0f;
  out[1] = static_cast<float>((v >> 8) & 0xff) / 255.0f;
  out[2] = static_cast<float>(v & 0xff) / 255.0f;
}

// LZF (liblzf) decompression, bounds-checked.
std::string lzf_decompress(const unsigned char* in, size_t in_len, size_t out_len, const std::string& name) {
  std::string out(out_len, '\0');
  size_t ip = 0, op = 0;
  auto bad = [&]() { return InputError(name + ": corrupt binary_compressed PCD data (LZF)"); };
  while (ip < in_len) {
    unsigned ctrl = in[ip++];
    if (ctrl < 32) {
      size_t len = ctrl + 1;
      if (ip + len > in_len || op + len > out_len) throw bad();
      std::memcpy(&out[op], in + ip, len);
      ip += len;
      op += len;
    } else {
      size_t len = ctrl >> 5;
      if (len == 7) {
        if (ip >= in_len) throw bad();
        len += in[ip++];
      }
      if (ip >= in_len) throw bad();
      size_t back = ((ctrl & 0x1f) << 8) + in[ip++] + 1;
      len += 2;
      if (back > op || op + len > out_len) throw bad();
      for (size_t k = 0; k < len; ++k, ++op) out[op] = out[op - back];
    }
  }
  if (op != out_len) throw bad();
  return out;
}

}  // namespace

PointCloud read_pcd(std::string_view bytes, const std::string& name) {
  detail::TextScanner sc(bytes);
  std::string_view line;
  std::vector<Field> fields;
  std::vector<int> sizes, counts;
  std::string types;
  int64_t width = -1, height = 1, points = -1;
  std::string data;
  while (sc.next_line(line)) {
    std::string_view rest = line, key, w;
    if (!next_word(rest, key) || key.front() == '#') continue;
    if (key == "VERSION" || key == "VIEWPOINT") continue;
    if (key == "FIELDS") {
      while (next_word(rest, w)) fields.push_back(Field{std::string(w)});
    } else if (key == "SIZE") {
      while (next_word(rest, w)) sizes.push_back(detail::parse_or_throw<int>(w, name, "PCD SIZE"));
    } else if (key == "TYPE") {
      while (next_word(rest, w)) {
        if (w.size() != 1 || (w[0] != 'F' && w[0] != 'U' && w[0] != 'I'))
          throw InputError(name + ": PCD TYPE must be F, U or I, got '" + std::string(w.substr(0, 20)) + "'");
        types.push_back(w[0]);
      }
    } else if (key == "COUNT") {
      while (next_word(rest, w)) counts.push_back(detail::parse_or_throw<int>(w, name, "PCD COUNT"));
    } else if (key == "WIDTH") {
      next_word(rest, w);
      width = detail::parse_or_throw<int64_t>(w, name, "PCD WIDTH");
    } else if (key == "HEIGHT") {
      next_word(rest, w);
      height = detail::parse_or_throw<int64_t>(w, name, "PCD HEIGHT");
    } else if (key == "POINTS") {
      next_word(rest, w);
      points = detail::parse_or_throw<int64_t>(w, name, "PCD POINTS");
    } else if (key == "DATA") {
      next_word(rest, w);
      data = std::string(w);
      break;
    } else {
      throw InputError(name + ": unknown PCD header line '" + std::string(line.substr(0, 40)) + "'");
    }
  }
  if (data.empty()) throw InputError(name + ": PCD header has no DATA line");
  if (fields.empty() || sizes.size() != fields.size() || types.size() != fields.size())
    throw InputError(name + ": PCD header FIELDS/SIZE/TYPE lengths differ or are empty");
  if (counts.empty()) counts.assign(fields.size(), 1);
  if (counts.size() != fields.size()) throw InputError(name + ": PCD header COUNT length differs from FIELDS");
  if (points < 0) points = width >= 0 ? width * height : -1;
  if (points < 0) throw InputError(name + ": PCD header lacks POINTS and WIDTH");
  size_t record = 0;
  int ix[3] = {-1, -1, -1}, irgb = -1, isep[3] = {-1, -1, -1};
  for (size_t i = 0; i < fields.size(); ++i) {
    Field& f = fields[i];
    f.size = sizes[i];
    f.type = types[i];
    f.count = counts[i];
    bool ok = (f.type == 'F' && (f.size == 4 || f.size == 8)) ||
              (f.type != 'F' && (f.size == 1 || f.size == 2 || f.size == 4 || f.size == 8));
    if (!ok || f.count < 1 || f.count > 1 << 20)
      throw InputError(name + ": PCD field '" + f.name + "' has an unsupported SIZE/TYPE/COUNT");
    f.offset = record;
    record += static_cast<size_t>(f.size) * f.count;
    if (f.name == "x") ix[0] = static_cast<int>(i);
    if (f.name == "y") ix[1] = static_cast<int>(i);
    if (f.name == "z") ix[2] = static_cast<int>(i);
    if ((f.name == "rgb" || f.name == "rgba") && f.size == 4) irgb = static_cast<int>(i);
    if (f.name == "r") isep[0] = static_cast<int>(i);
    if (f.name == "g") isep[1] = static_cast<int>(i);
    if (f.name == "b") isep[2] = static_cast<int>(i);
  }
  if (ix[0] < 0 || ix[1] < 0 || ix[2] < 0) throw InputError(name + ": PCD file lacks an x, y or z field");
  const bool sep = isep[0] >= 0 && isep[1] >= 0 && isep[2] >= 0;
  const bool has_colour = irgb >= 0 || sep;

  const size_t data_start = sc.pos();
  const size_t avail = bytes.size() - data_start;
  PointCloud pc;
  pc.had_colour = has_colour;

  if (data == "ascii") {
    detail::check_count_fits(points, 2 * static_cast<int64_t>(fields.size()), avail, name, "PCD points");
    pc.xyz.resize(points * 3);
    pc.rgb.assign(points * 3, kDefaultPointColour);
    detail::TextScanner ts(bytes.substr(data_start));
    std::string_view tok;
    std::vector<std::string_view> toks;
    for (int64_t r = 0; r < points; ++r) {
      toks.clear();
      for (const auto& f : fields)
        for (int k = 0; k < f.count; ++k) {
          if (!ts.next_token(tok)) throw InputError(name + ": PCD ascii data ends early at point " + std::to_string(r));
          toks.push_back(tok);
        }
      // field index -> its first token
      auto tok_of = [&](int fi) {
        size_t t = 0;
        for (int i = 0; i < fi; ++i) t += fields[i].count;
        return toks[t];
      };
      for (int c = 0; c < 3; ++c) {
        const Field& f = fields[ix[c]];
        pc.xyz[r * 3 + c] = f.type == 'F' && f.size == 4
                                ? detail::parse_or_throw<float>(tok_of(ix[c]), name, "PCD value")
                                : static_cast<float>(detail::parse_or_throw<double>(tok_of(ix[c]), name, "PCD value"));
      }
      if (irgb >= 0) {
        const Field& f = fields[irgb];
        unsigned char b[4];
        if (f.type == 'F') {
          float v = detail::parse_or_throw<float>(tok_of(irgb), name, "PCD rgb");
          std::memcpy(b, &v, 4);
        } else {
          uint32_t v = static_cast<uint32_t>(detail::parse_or_throw<double>(tok_of(irgb), name, "PCD rgb"));
          std::memcpy(b, &v, 4);
        }
        unpack_rgb(b, &pc.rgb[r * 3]);
      } else if (sep) {
        for (int c = 0; c < 3; ++c)
          pc.rgb[r * 3 + c] =
              static_cast<float>(detail::parse_or_throw<double>(tok_of(isep[c]), name, "PCD colour") / 255.0);
      }
    }
    return pc;
  }

  std::string decompressed;
  const unsigned char* base = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
  bool field_major = false;
  if (data == "binary") {
    if (record == 0) throw InputError(name + ": PCD record size is zero");
    detail::check_count_fits(points, static_cast<int64_t>(record), avail, name, "PCD points");
  } else if (data == "binary_compressed") {
    if (avail < 8) throw InputError(name + ": binary_compressed PCD data truncated");
    uint32_t csize, usize;
    std::memcpy(&csize, base, 4);
    std::memcpy(&usize, base + 4, 4);
    if (csize > avail - 8) throw InputError(name + ": binary_compressed PCD data truncated");
    if (record == 0 || static_cast<uint64_t>(usize) != static_cast<uint64_t>(points) * record)
      throw InputError(name + ": binary_compressed PCD size " + std::to_string(usize) + " does not match " +
                       std::to_string(points) + " points");
    // LZF expands at most ~ 8x + small constant: refuse claims the payload cannot hold.
    if (usize > static_cast<uint64_t>(csize) * 264 + 64) throw InputError(name + ": binary_compressed PCD size is implausible");
    decompressed = lzf_decompress(base + 8, csize, usize, name);
    base = reinterpret_cast<const unsigned char*>(decompressed.data());
    field_major = true;
  } else {
    throw InputError(name + ": unknown PCD DATA kind '" + data + "' (expected ascii, binary or binary_compressed)");
  }
  pc.xyz.resize(points * 3);
  pc.rgb.assign(points * 3, kDefaultPointColour);
  // Address of field fi of point r in either layout.
  auto at = [&](int fi, int64_t r) -> const unsigned char* {
    const Field& f = fields[fi];
    if (!field_major) return base + r * record + f.offset;
    return base + f.offset * points + r * static_cast<size_t>(f.size) * f.count;
  };
  for (int64_t r = 0; r < points; ++r) {
    for (int c = 0; c < 3; ++c) pc.xyz[r * 3 + c] = static_cast<float>(read_scalar(at(ix[c], r), fields[ix[c]]));
    if (irgb >= 0) unpack_rgb(at(irgb, r), &pc.rgb[r * 3]);
    else if (sep)
      for (int c = 0; c < 3; ++c)
        pc.rgb[r * 3 + c] = static_cast<float>(read_scalar(at(isep[c], r), fields[isep[c]]) / 255.0);
  }
  return pc;
}

}  // namespace omnibind::media
