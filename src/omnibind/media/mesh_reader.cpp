// Triangle-mesh readers: Wavefront OBJ (v / f, optional per-vertex colour "v x y z r g b"),
// OFF (incl. COFF colours) and STL (ASCII and binary). Polygons are fan-triangulated.
#include <cstring>

#include "omnibind/media/point_cloud.h"
#include "omnibind/media/point_cloud_text.h"

namespace omnibind::media {
namespace {

using detail::next_word;

void check_indices(const TriangleMesh& m, const std::string& name) {
  const size_t nv = m.vertices.size() / 3;
  for (uint32_t i : m.triangles)
    if (i >= nv) throw InputError(name + ": face references vertex " + std::to_string(i) + " but the mesh has " +
                                  std::to_string(nv) + " vertices");
}

void add_fan(TriangleMesh& m, const std::vector<uint32_t>& poly) {
  for (size_t k = 1; k + 1 < poly.size(); ++k) {
    m.triangles.push_back(poly[0]);
    m.triangles.push_back(poly[k]);
    m.triangles.push_back(poly[k + 1]);
  }
}

}  // namespace

TriangleMesh read_obj(std::string_view bytes, const std::string& name) {
  TriangleMesh m;
  detail::TextScanner sc(bytes);
  std::string_view line, w;
  std::vector<uint32_t> poly;
  bool all_coloured = true;
  while (sc.next_line(line)) {
    std::string_view rest = line;
    if (!next_word(rest, w) || w.front() == '#') continue;
    if (w == "v") {
      float v[6];
      int n = 0;
      while (n < 6 && next_word(rest, w)) v[n++] = detail::parse_or_throw<float>(w, name, "OBJ vertex coordinate");
      if (n < 3) throw InputError(name + ": OBJ vertex on line " + std::to_string(sc.line_number()) + " has fewer than 3 coordinates");
      m.vertices.insert(m.vertices.end(), v, v + 3);
      if (n == 6) m.colours.insert(m.colours.end(), v + 3, v + 6);
      else all_coloured = false;
    } else if (w == "f") {
      poly.clear();
      const int64_t nv = static_cast<int64_t>(m.vertices.size() / 3);
      while (next_word(rest, w)) {
        std::string_view idx = w.substr(0, w.find('/'));
        int64_t i = detail::parse_or_throw<int64_t>(idx, name, "OBJ face index");
        int64_t k = i > 0 ? i - 1 : nv + i;  // 1-based; negative = relative to the end
        if (i == 0 || k < 0 || k >= nv)
          throw InputError(name + ": OBJ face index " + std::to_string(i) + " out of range on line " +
                           std::to_string(sc.line_number()));
        poly.push_back(static_cast<uint32_t>(k));
      }
      if (poly.size() < 3) throw InputError(name + ": OBJ face with fewer than 3 vertices on line " + std::to_string(sc.line_number()));
      add_fan(m, poly);
    }
    // vt, vn, o, g, s, usemtl, mtllib, l, p... carry no surface geometry we need.
  }
  if (!all_coloured) m.colours.clear();
  return m;
}

TriangleMesh read_off(std::string_view bytes, const std::string& name) {
  std::string_view tok;
  // Tokens, skipping comments (a '#' starts a comment to the end of its line).
  std::string text;
  {
    text.reserve(bytes.size());
    bool comment = false;
    for (char c : bytes) {
      if (c == '#') comment = true;
      if (c == '\n') comment = false;
      text.push_back(comment ? ' ' : c);
    }
  }
  detail::TextScanner ts(text);
  if (!ts.next_token(tok)) throw InputError(name + ": empty OFF file");
  bool colour = false;
  std::string head(tok);
  if (head == "COFF") colour = true;
  else if (head != "OFF") {
    // "OFF" glued to the counts ("OFF8 6 0") is rare; anything else is not OFF.
    throw InputError(name + ": not an OFF file (first token '" + head.substr(0, 20) + "')");
  }
  int64_t nv = 0, nf = 0, ne = 0;
  if (!ts.next_token(tok)) throw InputError(name + ": OFF header lacks the vertex count");
  nv = detail::parse_or_throw<int64_t>(tok, name, "OFF vertex count");
  if (!ts.next_token(tok)) throw InputError(name + ": OFF header lacks the face count");
  nf = detail::parse_or_throw<int64_t>(tok, name, "OFF face count");
  if (!ts.next_token(tok)) throw InputError(name + ": OFF header lacks the edge count");
  ne = detail::parse_or_throw<int64_t>(tok, name, "OFF edge count");
  (void)ne;
  const int per_vertex = colour ? 7 : 3;  // COFF: x y z r g b a
  detail::check_count_fits(nv, 2 * per_vertex, ts.remaining(), name, "OFF vertices");
  detail::check_count_fits(nf, 8, ts.remaining(), name, "OFF faces");
  TriangleMesh m;
  m.vertices.resize(nv * 3);
  if (colour) m.colours.resize(nv * 3);
  for (int64_t i = 0; i < nv; ++i)
    for (int c = 0; c < per_vertex; ++c) {
      if (!ts.next_token(tok)) throw InputError(name + ": OFF data ends early in vertex " + std::to_string(i));
      float v = detail::parse_or_throw<float>(tok, name, "OFF vertex value");
      if (c < 3) m.vertices[i * 3 + c] = v;
      else if (c < 6) m.colours[i * 3 + c - 3] = v > 1.0f ? v / 255.0f : v;
    }
  // Faces one per line: "n i0 ... i(n-1) [face colour]" (the colour tokens are ignored).
  std::vector<uint32_t> poly;
  detail::TextScanner lines(std::string_view(text).substr(ts.pos()));
  std::string_view line, w;
  for (int64_t f = 0; f < nf;) {
    if (!lines.next_line(line)) throw InputError(name + ": OFF data ends early in face " + std::to_string(f));
    if (!next_word(line, w)) continue;
    int64_t n = detail::parse_or_throw<int64_t>(w, name, "OFF face size");
    if (n < 3 || n > nv) throw InputError(name + ": OFF face " + std::to_string(f) + " has " + std::to_string(n) + " vertices");
    poly.clear();
    for (int64_t k = 0; k < n; ++k) {
      if (!next_word(line, w)) throw InputError(name + ": OFF face " + std::to_string(f) + " has fewer indices than declared");
      int64_t i = detail::parse_or_throw<int64_t>(w, name, "OFF face index");
      if (i < 0 || i >= nv) throw InputError(name + ": OFF face " + std::to_string(f) + " index " + std::to_string(i) + " out of range");
      poly.push_back(static_cast<uint32_t>(i));
    }
    add_fan(m, poly);
    ++f;
  }
  check_indices(m, name);
  return m;
}

TriangleMesh read_stl(std::string_view bytes, const std::string& name) {
  TriangleMesh m;
  // Binary: 80-byte header, u32 count, 50 bytes per triangle (normal, 3 vertices, u16 attribute).
  if (bytes.size() >= 84) {
    uint32_t count;
    std::memcpy(&count, bytes.data() + 80, 4);
    if (84 + static_cast<uint64_t>(count) * 50 == bytes.size()) {
      m.vertices.resize(static_cast<size_t>(count) * 9);
      m.triangles.resize(static_cast<size_t>(count) * 3);
      for (uint32_t t = 0; t < count; ++t) {
        std::memcpy(&m.vertices[t * 9], bytes.data() + 84 + t * 50 + 12, 36);
        for (int k = 0; k < 3; ++k) m.triangles[t * 3 + k] = t * 3 + k;
      }
      return m;
    }
  }
  if (!detail::starts_with(bytes, "solid"))
    throw InputError(name + ": not an STL file (binary size does not match its triangle count, and no 'solid' header)");
  detail::TextScanner ts(bytes);
  std::string_view tok;
  int in_facet = 0;
  while (ts.next_token(tok)) {
    if (tok == "vertex") {
      for (int c = 0; c < 3; ++c) {
        if (!ts.next_token(tok)) throw InputError(name + ": ASCII STL ends inside a vertex");
        m.vertices.push_back(detail::parse_or_throw<float>(tok, name, "STL vertex coordinate"));
      }
      ++in_facet;
    } else if (tok == "endfacet") {
      if (in_facet != 3) throw InputError(name + ": ASCII STL facet with " + std::to_string(in_facet) + " vertices (expected 3)");
      in_facet = 0;
    }
  }
  if (in_facet != 0) throw InputError(name + ": ASCII STL ends inside a facet");
  const uint32_t nv = static_cast<uint32_t>(m.vertices.size() / 3);
  for (uint32_t i = 0; i < nv; ++i) m.triangles.push_back(i);
  return m;
}

}  // namespace omnibind::media
