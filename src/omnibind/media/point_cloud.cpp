// Format dispatch, NPY and safetensors clouds, mesh surface sampling, validation.
#include "omnibind/media/half_float.h"
#include "omnibind/media/point_cloud.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "omnibind/common/atomic_file.h"
#include "omnibind/media/point_cloud_text.h"
#include "omnibind/tensor_io/safetensors.h"

namespace omnibind::media {
namespace {


// Rows of an [N, C] array with C = 3 (xyz) or 6 (xyz rgb) -> cloud. `get(i)` yields element i.
template <typename Get>
PointCloud cloud_from_rows(int64_t n, int64_t c, Get get) {
  PointCloud pc;
  pc.xyz.resize(n * 3);
  pc.rgb.assign(n * 3, kDefaultPointColour);
  pc.had_colour = c == 6;
  for (int64_t r = 0; r < n; ++r)
    for (int k = 0; k < 3; ++k) {
      pc.xyz[r * 3 + k] = get(r * c + k);
      if (c == 6) pc.rgb[r * 3 + k] = get(r * c + 3 + k);
    }
  return pc;
}

// Colours stored as 0..255 are scaled to 0..1 (the reference expects [0,1]).
void normalise_colour_range(PointCloud& pc) {
  if (!pc.had_colour) return;
  float mx = 0;
  for (float v : pc.rgb) mx = std::max(mx, v);
  if (mx > 1.0f)
    for (float& v : pc.rgb) v /= 255.0f;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform01(uint64_t& state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; }

std::string extension_of(const std::string& name) {
  return detail::lower(std::filesystem::path(name).extension().string());
}

}  // namespace

PointCloud read_npy_cloud(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") throw InputError(name + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw InputError(name + ": truncated .npy header");
    uint32_t l;
    std::memcpy(&l, bytes.data() + 8, 4);
    hlen = l;
    hstart = 12;
  } else {
    throw InputError(name + ": unsupported .npy version " + std::to_string(major));
  }
  if (hstart + hlen > bytes.size()) throw InputError(name + ": truncated .npy header");
  std::string_view header = bytes.substr(hstart, hlen);
  auto value_of = [&](std::string_view key) -> std::string_view {
    size_t k = header.find(std::string("'") + std::string(key) + "'");
    if (k == std::string_view::npos) throw InputError(name + ": .npy header lacks '" + std::string(key) + "'");
    size_t colon = header.find(':', k);
    if (colon == std::string_view::npos) throw InputError(name + ": malformed .npy header");
    return header.substr(colon + 1);
  };
  std::string_view d = value_of("descr");
  size_t q1 = d.find('\''), q2 = d.find('\'', q1 + 1);
  if (q1 == std::string_view::npos || q2 == std::string_view::npos) throw InputError(name + ": malformed .npy descr");
  std::string descr(d.substr(q1 + 1, q2 - q1 - 1));
  if (descr == "|O") return read_pickled_npy_cloud(bytes.substr(hstart + hlen), name);
  std::string_view fo = value_of("fortran_order");
  const bool fortran = detail::starts_with(fo.substr(fo.find_first_not_of(' ')), "True");
  std::string_view sh = value_of("shape");
  size_t p1 = sh.find('('), p2 = sh.find(')');
  if (p1 == std::string_view::npos || p2 == std::string_view::npos) throw InputError(name + ": malformed .npy shape");
  std::vector<int64_t> shape;
  std::string_view dims = sh.substr(p1 + 1, p2 - p1 - 1), w;
  {
    std::string tmp(dims);
    for (char& ch : tmp) if (ch == ',') ch = ' ';
    std::string_view rest = tmp;
    while (detail::next_word(rest, w)) shape.push_back(detail::parse_or_throw<int64_t>(w, name, ".npy shape"));
  }
  if (shape.size() != 2 || (shape[1] != 3 && shape[1] != 6))
    throw InputError(name + ": .npy array must have shape [N, 3] or [N, 6]");
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '>' && descr[0] != '=') || descr[1] != 'f' ||
      (descr[2] != '2' && descr[2] != '4' && descr[2] != '8'))
    throw InputError(name + ": .npy dtype '" + descr + "' unsupported (expected float16/32/64)");
  const int esize = descr[2] - '0';
  const bool swap = (descr[0] == '>') != (std::endian::native == std::endian::big);
  const int64_t n = shape[0], c = shape[1];
  const size_t data_start = hstart + hlen;
  detail::check_count_fits(n, c * esize, bytes.size() - data_start, name, ".npy rows");
  const unsigned char* base = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
  auto get = [&](int64_t i) -> float {
    int64_t r = i / c, k = i % c;
    int64_t e = fortran ? k * n + r : i;
    unsigned char b[8];
    for (int j = 0; j < esize; ++j) b[j] = base[e * esize + (swap ? esize - 1 - j : j)];
    if (esize == 2) { uint16_t h; std::memcpy(&h, b, 2); return half_to_float(h); }
    if (esize == 4) { float f; std::memcpy(&f, b, 4); return f; }
    double x; std::memcpy(&x, b, 8); return static_cast<float>(x);
  };
  PointCloud pc = cloud_from_rows(n, c, get);
  normalise_colour_range(pc);
  return pc;
}

PointCloud read_safetensors_cloud(const std::string& path) {
  auto file = tensor_io::read_safetensors(path);
  const auto& t = file.tensors;
  auto as_rows = [&](const std::string& key, std::vector<float>& out) -> int64_t {
    const auto& raw = t.at(key);
    if (raw.shape.size() != 2 || raw.shape[1] != 3)
      throw InputError(path + ": tensor '" + key + "' must have shape [N, 3], got " + raw.shape_string());
    if (!raw.is_contiguous()) throw InputError(path + ": tensor '" + key + "' is not contiguous");
    const int64_t n = raw.shape[0];
    out.resize(n * 3);
    const std::byte* p = raw.data + raw.storage_offset * tensor_io::dtype_size(raw.dtype);
    for (int64_t i = 0; i < n * 3; ++i) {
      switch (raw.dtype) {
        case tensor_io::DType::F32: { float f; std::memcpy(&f, p + i * 4, 4); out[i] = f; break; }
        case tensor_io::DType::F64: { double f; std::memcpy(&f, p + i * 8, 8); out[i] = static_cast<float>(f); break; }
        case tensor_io::DType::F16: { uint16_t h; std::memcpy(&h, p + i * 2, 2); out[i] = half_to_float(h); break; }
        case tensor_io::DType::U8: out[i] = static_cast<float>(static_cast<uint8_t>(p[i])) / 255.0f; break;
        default: throw InputError(path + ": tensor '" + key + "' has unsupported dtype " +
                                  std::string(tensor_io::dtype_name(raw.dtype)));
      }
    }
    return n;
  };
  PointCloud pc;
  if (!t.contains("xyz")) throw InputError(path + ": safetensors point cloud needs a tensor 'xyz' [N, 3] (and optional 'rgb')");
  int64_t n = as_rows("xyz", pc.xyz);
  if (t.contains("rgb")) {
    int64_t m = as_rows("rgb", pc.rgb);
    if (m != n) throw InputError(path + ": 'rgb' has " + std::to_string(m) + " rows but 'xyz' has " + std::to_string(n));
    pc.had_colour = true;
    if (t.at("rgb").dtype != tensor_io::DType::U8) normalise_colour_range(pc);
  } else {
    pc.rgb.assign(n * 3, kDefaultPointColour);
  }
  return pc;
}

PointCloud sample_mesh_surface(const TriangleMesh& mesh, int64_t n, uint64_t seed, const std::string& name) {
  const size_t nt = mesh.triangles.size() / 3;
  if (nt == 0) throw InputError(name + ": mesh has no faces to sample points from");
  if (n <= 0) throw InputError(name + ": number of surface points must be positive");
  const float* v = mesh.vertices.data();
  std::vector<double> cum(nt);
  double total = 0;
  for (size_t t = 0; t < nt; ++t) {
    const float* a = v + mesh.triangles[t * 3] * 3;
    const float* b = v + mesh.triangles[t * 3 + 1] * 3;
    const float* c = v + mesh.triangles[t * 3 + 2] * 3;
    double e1[3], e2[3];
    for (int k = 0; k < 3; ++k) { e1[k] = double(b[k]) - a[k]; e2[k] = double(c[k]) - a[k]; }
    double cx = e1[1] * e2[2] - e1[2] * e2[1], cy = e1[2] * e2[0] - e1[0] * e2[2], cz = e1[0] * e2[1] - e1[1] * e2[0];
    double area = 0.5 * std::sqrt(cx * cx + cy * cy + cz * cz);
    if (!std::isfinite(area)) throw InputError(name + ": mesh has non-finite vertex coordinates");
    total += area;
    cum[t] = total;
  }
  if (!(total > 0)) throw InputError(name + ": degenerate mesh (total surface area is zero)");
  const bool colour = !mesh.colours.empty();
  PointCloud pc;
  pc.xyz.resize(n * 3);
  pc.rgb.assign(n * 3, kDefaultPointColour);
  pc.had_colour = colour;
  uint64_t state = seed;
  for (int64_t i = 0; i < n; ++i) {
    double u = uniform01(state) * total;
    size_t t = std::upper_bound(cum.begin(), cum.end(), u) - cum.begin();
    if (t >= nt) t = nt - 1;
    double r1 = std::sqrt(uniform01(state)), r2 = uniform01(state);
    double wa = 1 - r1, wb = r1 * (1 - r2), wc = r1 * r2;  // uniform barycentric weights
    const uint32_t ia = mesh.triangles[t * 3], ib = mesh.triangles[t * 3 + 1], ic = mesh.triangles[t * 3 + 2];
    for (int k = 0; k < 3; ++k) {
      pc.xyz[i * 3 + k] = static_cast<float>(wa * v[ia * 3 + k] + wb * v[ib * 3 + k] + wc * v[ic * 3 + k]);
      if (colour) {
        const float* col = mesh.colours.data();
        pc.rgb[i * 3 + k] = static_cast<float>(wa * col[ia * 3 + k] + wb * col[ib * 3 + k] + wc * col[ic * 3 + k]);
      }
    }
  }
  if (colour) normalise_colour_range(pc);
  return pc;
}

void validate_point_cloud(const PointCloud& cloud, const std::string& name) {
  if (cloud.size() == 0) throw InputError(name + ": point cloud is empty");
  for (size_t i = 0; i < cloud.xyz.size(); ++i)
    if (!std::isfinite(cloud.xyz[i]))
      throw InputError(name + ": point " + std::to_string(i / 3) + " has a non-finite coordinate (NaN or Inf)");
  for (size_t i = 0; i < cloud.rgb.size(); ++i)
    if (!std::isfinite(cloud.rgb[i]))
      throw InputError(name + ": point " + std::to_string(i / 3) + " has a non-finite colour (NaN or Inf)");
}

PointCloud read_point_cloud_bytes(std::string_view bytes, const std::string& name, const PointCloudReadOptions& options) {
  if (bytes.empty()) throw InputError(name + ": file is empty");
  const std::string ext = extension_of(name);
  PointCloud pc;
  auto mesh = [&](TriangleMesh m) { return sample_mesh_surface(m, options.mesh_points, options.mesh_seed, name); };
  if (detail::starts_with(bytes, "ply\n") || detail::starts_with(bytes, "ply\r\n")) pc = read_ply(bytes, name);
  else if (detail::starts_with(bytes, "\x93NUMPY")) pc = read_npy_cloud(bytes, name);
  else if (ext == ".pcd" || detail::starts_with(bytes, "# .PCD") || detail::starts_with(bytes, "VERSION")) pc = read_pcd(bytes, name);
  else if (ext == ".off" || detail::starts_with(bytes, "OFF") || detail::starts_with(bytes, "COFF")) pc = mesh(read_off(bytes, name));
  else if (ext == ".stl") pc = mesh(read_stl(bytes, name));
  else if (ext == ".obj") pc = mesh(read_obj(bytes, name));
  else if (ext == ".ply") pc = read_ply(bytes, name);
  else if (ext == ".npy") pc = read_npy_cloud(bytes, name);
  else
    throw InputError(name + ": unrecognised point-cloud format (expected .ply .pcd .npy .safetensors .obj .off .stl)");
  validate_point_cloud(pc, name);
  return pc;
}

PointCloud read_point_cloud_file(const std::string& path, const PointCloudReadOptions& options) {
  if (extension_of(path) == ".safetensors" || tensor_io::looks_like_safetensors(path)) {
    PointCloud pc = read_safetensors_cloud(path);
    validate_point_cloud(pc, path);
    return pc;
  }
  return read_point_cloud_bytes(read_file_bytes(path), path, options);
}

}  // namespace omnibind::media
