// PLY (ASCII, binary little/big endian): the vertex element's x, y, z and optional colour
// (red/green/blue, r/g/b or diffuse_*), in any property order and any scalar type. Integer
// colours are scaled by their type's maximum (uchar /255); float colours are taken as given.
// Other elements (faces, edges...) are skipped, list properties included.
#include <algorithm>
#include <bit>
#include <cstring>

#include "omnibind/media/point_cloud.h"
#include "omnibind/media/point_cloud_text.h"

namespace omnibind::media {
namespace {

using detail::next_word;

enum class PlyType { I8, U8, I16, U16, I32, U32, F32, F64 };

bool ply_type(std::string_view s, PlyType& t) {
  if (s == "char" || s == "int8") t = PlyType::I8;
  else if (s == "uchar" || s == "uint8") t = PlyType::U8;
  else if (s == "short" || s == "int16") t = PlyType::I16;
  else if (s == "ushort" || s == "uint16") t = PlyType::U16;
  else if (s == "int" || s == "int32") t = PlyType::I32;
  else if (s == "uint" || s == "uint32") t = PlyType::U32;
  else if (s == "float" || s == "float32") t = PlyType::F32;
  else if (s == "double" || s == "float64") t = PlyType::F64;
  else return false;
  return true;
}

int type_size(PlyType t) {
  switch (t) {
    case PlyType::I8: case PlyType::U8: return 1;
    case PlyType::I16: case PlyType::U16: return 2;
    case PlyType::I32: case PlyType::U32: case PlyType::F32: return 4;
    case PlyType::F64: return 8;
  }
  return 1;
}

bool is_integer(PlyType t) { return t != PlyType::F32 && t != PlyType::F64; }

double type_max(PlyType t) {
  switch (t) {
    case PlyType::I8: return 127; case PlyType::U8: return 255;
    case PlyType::I16: return 32767; case PlyType::U16: return 65535;
    case PlyType::I32: return 2147483647.0; case PlyType::U32: return 4294967295.0;
    default: return 1;
  }
}

struct Property {
  std::string name;
  PlyType type = PlyType::F32;
  bool is_list = false;
  PlyType count_type = PlyType::U8;
};

struct Element {
  std::string name;
  int64_t count = 0;
  std::vector<Property> props;
};

enum class Format { Ascii, LittleEndian, BigEndian };

// Reads one binary scalar as double (exact for every PLY type).
double read_binary(const unsigned char* p, PlyType t, bool swap) {
  unsigned char b[8];
  int n = type_size(t);
  if (swap) for (int i = 0; i < n; ++i) b[i] = p[n - 1 - i];
  else std::memcpy(b, p, n);
  switch (t) {
    case PlyType::I8: { int8_t v; std::memcpy(&v, b, 1); return v; }
    case PlyType::U8: return b[0];
    case PlyType::I16: { int16_t v; std::memcpy(&v, b, 2); return v; }
    case PlyType::U16: { uint16_t v; std::memcpy(&v, b, 2); return v; }
    case PlyType::I32: { int32_t v; std::memcpy(&v, b, 4); return v; }
    case PlyType::U32: { uint32_t v; std::memcpy(&v, b, 4); return v; }
    case PlyType::F32: { float v; std::memcpy(&v, b, 4); return v; }
    case PlyType::F64: { double v; std::memcpy(&v, b, 8); return v; }
  }
  return 0;
}

int colour_slot(const std::string& n) {
  if (n == "red" || n == "r" || n == "diffuse_red") return 0;
  if (n == "green" || n == "g" || n == "diffuse_green") return 1;
  if (n == "blue" || n == "b" || n == "diffuse_blue") return 2;
  return -1;
}

}  // namespace

PointCloud read_ply(std::string_view bytes, const std::string& name) {
  detail::TextScanner sc(bytes);
  std::string_view line;
  if (!sc.next_line(line) || line != "ply") throw InputError(name + ": not a PLY file (missing 'ply' magic line)");
  Format format = Format::Ascii;
  bool have_format = false, have_end = false;
  std::vector<Element> elements;
  while (sc.next_line(line)) {
    std::string_view rest = line, word;
    if (!next_word(rest, word)) continue;
    if (word == "comment" || word == "obj_info") continue;
    if (word == "format") {
      std::string_view f;
      next_word(rest, f);
      if (f == "ascii") format = Format::Ascii;
      else if (f == "binary_little_endian") format = Format::LittleEndian;
      else if (f == "binary_big_endian") format = Format::BigEndian;
      else throw InputError(name + ": unknown PLY format '" + std::string(f) + "'");
      have_format = true;
    } else if (word == "element") {
      std::string_view en, ec;
      if (!next_word(rest, en) || !next_word(rest, ec))
        throw InputError(name + ": malformed PLY element line '" + std::string(line.substr(0, 60)) + "'");
      Element e;
      e.name = std::string(en);
      e.count = detail::parse_or_throw<int64_t>(ec, name, "PLY element count");
      if (e.count < 0) throw InputError(name + ": negative PLY element count");
      elements.push_back(std::move(e));
    } else if (word == "property") {
      if (elements.empty()) throw InputError(name + ": PLY property before any element");
      Property p;
      std::string_view t1, t2, t3, pn;
      if (!next_word(rest, t1)) throw InputError(name + ": malformed PLY property line");
      if (t1 == "list") {
        if (!next_word(rest, t2) || !next_word(rest, t3) || !next_word(rest, pn) || !ply_type(t2, p.count_type) ||
            !ply_type(t3, p.type))
          throw InputError(name + ": malformed PLY list property '" + std::string(line.substr(0, 60)) + "'");
        p.is_list = true;
      } else {
        if (!next_word(rest, pn) || !ply_type(t1, p.type))
          throw InputError(name + ": malformed PLY property '" + std::string(line.substr(0, 60)) + "'");
      }
      p.name = std::string(pn);
      elements.back().props.push_back(std::move(p));
    } else if (word == "end_header") {
      have_end = true;
      break;
    } else {
      throw InputError(name + ": unknown PLY header keyword '" + std::string(word.substr(0, 40)) + "'");
    }
  }
  if (!have_format || !have_end) throw InputError(name + ": PLY header incomplete (missing format or end_header)");

  // Locate the vertex element and its coordinate / colour properties.
  int vi = -1;
  for (size_t i = 0; i < elements.size(); ++i)
    if (elements[i].name == "vertex") vi = static_cast<int>(i);
  if (vi < 0) throw InputError(name + ": PLY file has no 'vertex' element");
  const Element& ve = elements[vi];
  int ix[3] = {-1, -1, -1}, ic[3] = {-1, -1, -1};
  for (size_t j = 0; j < ve.props.size(); ++j) {
    const auto& p = ve.props[j];
    if (p.is_list) continue;
    if (p.name == "x") ix[0] = static_cast<int>(j);
    if (p.name == "y") ix[1] = static_cast<int>(j);
    if (p.name == "z") ix[2] = static_cast<int>(j);
    int c = colour_slot(p.name);
    if (c >= 0) ic[c] = static_cast<int>(j);
  }
  if (ix[0] < 0 || ix[1] < 0 || ix[2] < 0) throw InputError(name + ": PLY vertex element lacks x, y or z");
  const bool has_colour = ic[0] >= 0 && ic[1] >= 0 && ic[2] >= 0;
  double cscale[3] = {1, 1, 1};
  if (has_colour)
    for (int c = 0; c < 3; ++c) {
      PlyType t = ve.props[ic[c]].type;
      cscale[c] = is_integer(t) ? 1.0 / type_max(t) : 1.0;
    }

  const size_t data_start = sc.pos();
  const size_t avail = bytes.size() - data_start;
  // Minimum bytes one element needs: binary = fixed sizes (lists at least their count); ASCII = one
  // digit + one separator per value.
  for (const auto& e : elements) {
    int64_t min_each = 0;
    for (const auto& p : e.props) min_each += format == Format::Ascii ? 2 : type_size(p.is_list ? p.count_type : p.type);
    detail::check_count_fits(e.count, std::max<int64_t>(min_each, 1), avail, name, ("PLY " + e.name + "s").c_str());
  }

  PointCloud pc;
  pc.xyz.resize(static_cast<size_t>(ve.count) * 3);
  pc.rgb.assign(static_cast<size_t>(ve.count) * 3, kDefaultPointColour);
  pc.had_colour = has_colour;
  std::vector<double> vals(ve.props.size());

  if (format == Format::Ascii) {
    detail::TextScanner ts(bytes.substr(data_start));
    std::string_view tok;
    for (int ei = 0; ei < static_cast<int>(elements.size()); ++ei) {
      const Element& e = elements[ei];
      if (ei > vi) break;  // everything after the vertex element is irrelevant
      for (int64_t r = 0; r < e.count; ++r) {
        for (size_t j = 0; j < e.props.size(); ++j) {
          const auto& p = e.props[j];
          if (!ts.next_token(tok))
            throw InputError(name + ": PLY data ends early in element '" + e.name + "' row " + std::to_string(r));
          if (p.is_list) {
            int64_t n = detail::parse_or_throw<int64_t>(tok, name, "PLY list length");
            if (n < 0 || n > static_cast<int64_t>(ts.remaining())) throw InputError(name + ": bad PLY list length");
            for (int64_t k = 0; k < n; ++k)
              if (!ts.next_token(tok)) throw InputError(name + ": PLY data ends inside a list");
            continue;
          }
          if (ei != vi) continue;
          // float-typed values parse straight to float (no double rounding through double).
          if (p.type == PlyType::F32) vals[j] = detail::parse_or_throw<float>(tok, name, "PLY value");
          else vals[j] = detail::parse_or_throw<double>(tok, name, "PLY value");
        }
        if (ei == vi) {
          for (int c = 0; c < 3; ++c) {
            pc.xyz[r * 3 + c] = static_cast<float>(vals[ix[c]]);
            if (has_colour) pc.rgb[r * 3 + c] = static_cast<float>(vals[ic[c]] * cscale[c]);
          }
        }
      }
    }
  } else {
    const bool swap = (format == Format::BigEndian) != (std::endian::native == std::endian::big);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
    const unsigned char* end = reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size();
    for (int ei = 0; ei <= vi; ++ei) {
      const Element& e = elements[ei];
      for (int64_t r = 0; r < e.count; ++r) {
        for (size_t j = 0; j < e.props.size(); ++j) {
          const auto& pr = e.props[j];
          if (pr.is_list) {
            int cs = type_size(pr.count_type);
            if (end - p < cs) throw InputError(name + ": PLY binary data truncated in element '" + e.name + "'");
            double n = read_binary(p, pr.count_type, swap);
            p += cs;
            if (n < 0 || n * type_size(pr.type) > static_cast<double>(end - p))
              throw InputError(name + ": PLY binary data truncated in a list of element '" + e.name + "'");
            p += static_cast<int64_t>(n) * type_size(pr.type);
            continue;
          }
          int ts = type_size(pr.type);
          if (end - p < ts)
            throw InputError(name + ": PLY binary data truncated in element '" + e.name + "' row " + std::to_string(r));
          if (ei == vi) vals[j] = read_binary(p, pr.type, swap);
          p += ts;
        }
        if (ei == vi)
          for (int c = 0; c < 3; ++c) {
            pc.xyz[r * 3 + c] = static_cast<float>(vals[ix[c]]);
            if (has_colour) pc.rgb[r * 3 + c] = static_cast<float>(vals[ic[c]] * cscale[c]);
          }
      }
    }
  }
  return pc;
}

}  // namespace omnibind::media
