// Point-cloud readers: every format against the same synthetic cloud, mesh sampling, the fixture's
// PLY/safetensors copies of one cloud, and one-line InputErrors for every kind of bad input.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>

#include "omnibind/common/error.h"
#include "omnibind/media/point_cloud.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using media::PointCloud;

// 5 points with uchar colours.
const std::vector<float> kXyz = {0.5f, -1.25f, 2.0f, 1e-3f, 3.0f, -0.75f, 10.0f, 0.0f, 0.125f, -3.5f, 2.5f, 1.0f, 0.0f, 0.0f, 7.0f};
const std::vector<uint8_t> kRgb = {255, 0, 128, 10, 20, 30, 0, 0, 0, 255, 255, 255, 1, 2, 3};

template <typename T>
void put(std::string& s, T v, bool big = false) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  if (big) std::reverse(b, b + sizeof(T));
  s.append(b, sizeof(T));
}

void expect_cloud(const PointCloud& pc, bool colour, const std::string& what) {
  ASSERT_EQ(pc.size(), 5) << what;
  for (size_t i = 0; i < kXyz.size(); ++i) EXPECT_EQ(pc.xyz[i], kXyz[i]) << what << " xyz " << i;
  EXPECT_EQ(pc.had_colour, colour) << what;
  for (size_t i = 0; i < kRgb.size(); ++i)
    EXPECT_FLOAT_EQ(pc.rgb[i], colour ? kRgb[i] / 255.0f : 0.4f) << what << " rgb " << i;
}

// Property order deliberately not x y z r g b; a face element after the vertices.
std::string make_ply(const std::string& format, bool big) {
  std::string s = "ply\nformat " + format + " 1.0\ncomment test\nelement vertex 5\nproperty uchar red\n"
                  "property double z\nproperty float x\nproperty uchar green\nproperty float y\nproperty uchar blue\n"
                  "element face 1\nproperty list uchar int vertex_indices\nend_header\n";
  for (int i = 0; i < 5; ++i) {
    if (format == "ascii") {
      char line[200];
      std::snprintf(line, sizeof line, "%d %.9g %.9g %d %.9g %d\n", kRgb[i * 3], kXyz[i * 3 + 2], kXyz[i * 3],
                    kRgb[i * 3 + 1], kXyz[i * 3 + 1], kRgb[i * 3 + 2]);
      s += line;
    } else {
      put<uint8_t>(s, kRgb[i * 3]);
      put<double>(s, kXyz[i * 3 + 2], big);
      put<float>(s, kXyz[i * 3], big);
      put<uint8_t>(s, kRgb[i * 3 + 1]);
      put<float>(s, kXyz[i * 3 + 1], big);
      put<uint8_t>(s, kRgb[i * 3 + 2]);
    }
  }
  if (format == "ascii") s += "3 0 1 2\n";
  else {
    put<uint8_t>(s, 3);
    for (int k = 0; k < 3; ++k) put<int32_t>(s, k, big);
  }
  return s;
}

TEST(PointCloudIo, PlyAsciiAndBinaryBothEndiansAnyPropertyOrder) {
  expect_cloud(media::read_ply(make_ply("ascii", false), "a.ply"), true, "ascii");
  expect_cloud(media::read_ply(make_ply("binary_little_endian", false), "le.ply"), true, "le");
  expect_cloud(media::read_ply(make_ply("binary_big_endian", true), "be.ply"), true, "be");
}

TEST(PointCloudIo, PlyWithoutColourGetsTheReferenceConstant) {
  std::string s = "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  for (int i = 0; i < 5; ++i) {
    char line[100];
    std::snprintf(line, sizeof line, "%.9g %.9g %.9g\n", kXyz[i * 3], kXyz[i * 3 + 1], kXyz[i * 3 + 2]);
    s += line;
  }
  expect_cloud(media::read_point_cloud_bytes(s, "x.ply"), false, "no colour");
}

std::string pcd_header(const std::string& data, const std::string& fields, const std::string& size, const std::string& type) {
  return "# .PCD v0.7\nVERSION 0.7\nFIELDS " + fields + "\nSIZE " + size + "\nTYPE " + type + "\nCOUNT 1 1 1 1\nWIDTH 5\nHEIGHT 1\n"
         "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 5\nDATA " + data + "\n";
}
uint32_t packed(int i) { return (uint32_t(kRgb[i * 3]) << 16) | (uint32_t(kRgb[i * 3 + 1]) << 8) | kRgb[i * 3 + 2]; }

TEST(PointCloudIo, PcdAsciiBinaryAndCompressed) {
  std::string a = pcd_header("ascii", "x y z rgb", "4 4 4 4", "F F F U");
  for (int i = 0; i < 5; ++i) {
    char line[120];
    std::snprintf(line, sizeof line, "%.9g %.9g %.9g %u\n", kXyz[i * 3], kXyz[i * 3 + 1], kXyz[i * 3 + 2], packed(i));
    a += line;
  }
  expect_cloud(media::read_pcd(a, "a.pcd"), true, "pcd ascii");

  std::string b = pcd_header("binary", "x y z rgb", "4 4 4 4", "F F F F");
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 3; ++k) put<float>(b, kXyz[i * 3 + k]);
    put<uint32_t>(b, packed(i));
  }
  expect_cloud(media::read_pcd(b, "b.pcd"), true, "pcd binary");

  // binary_compressed: field-major payload, LZF-encoded as literal runs (a valid LZF stream).
  std::string raw;
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 5; ++i) put<float>(raw, kXyz[i * 3 + k]);
  for (int i = 0; i < 5; ++i) put<uint32_t>(raw, packed(i));
  std::string lzf;
  for (size_t p = 0; p < raw.size(); p += 32) {
    size_t n = std::min<size_t>(32, raw.size() - p);
    lzf.push_back(static_cast<char>(n - 1));
    lzf.append(raw, p, n);
  }
  std::string c = pcd_header("binary_compressed", "x y z rgb", "4 4 4 4", "F F F U");
  put<uint32_t>(c, static_cast<uint32_t>(lzf.size()));
  put<uint32_t>(c, static_cast<uint32_t>(raw.size()));
  c += lzf;
  expect_cloud(media::read_pcd(c, "c.pcd"), true, "pcd compressed");
}

std::string npy(const std::string& descr, const std::string& shape, const std::string& payload) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string s = "\x93NUMPY\x01";
  s.push_back('\0');
  put<uint16_t>(s, static_cast<uint16_t>(header.size()));
  return s + header + payload;
}

TEST(PointCloudIo, NpyFloatArraysWithAndWithoutColour) {
  std::string p3, p6, be;
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 3; ++k) put<float>(p3, kXyz[i * 3 + k]);
    for (int k = 0; k < 3; ++k) put<double>(p6, kXyz[i * 3 + k]);
    for (int k = 0; k < 3; ++k) put<double>(p6, kRgb[i * 3 + k]);  // 0..255: scaled to 0..1
    for (int k = 0; k < 3; ++k) put<float>(be, kXyz[i * 3 + k], true);
  }
  expect_cloud(media::read_point_cloud_bytes(npy("<f4", "(5, 3)", p3), "a.npy"), false, "npy f4");
  expect_cloud(media::read_point_cloud_bytes(npy("<f8", "(5, 6)", p6), "b.npy"), true, "npy f8 rgb255");
  expect_cloud(media::read_point_cloud_bytes(npy(">f4", "(5, 3)", be), "c.npy"), false, "npy big endian");
}

const char* kSquareObj = "# unit square, two triangles\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1/1 3/3 4/4\n";
const char* kSquareOff = "OFF\n# comment\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3 255 0 0\n";
const char* kSquareStl =
    "solid sq\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 1 1 0\nendloop\nendfacet\n"
    "facet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 1 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid sq\n";

std::string binary_stl() {
  std::string s(80, ' ');
  put<uint32_t>(s, 2);
  const float tris[2][9] = {{0, 0, 0, 1, 0, 0, 1, 1, 0}, {0, 0, 0, 1, 1, 0, 0, 1, 0}};
  for (auto& t : tris) {
    for (int k = 0; k < 3; ++k) put<float>(s, k == 2 ? 1.f : 0.f);
    for (float v : t) put<float>(s, v);
    put<uint16_t>(s, 0);
  }
  return s;
}

TEST(PointCloudIo, MeshesAreSampledOnTheSurfaceDeterministically) {
  media::PointCloudReadOptions o;
  o.mesh_points = 2000;
  o.mesh_seed = 3;
  std::vector<std::pair<std::string, std::string>> files = {
      {"sq.obj", kSquareObj}, {"sq.off", kSquareOff}, {"sq.stl", kSquareStl}, {"sqb.stl", binary_stl()}};
  PointCloud first;
  for (const auto& [name, bytes] : files) {
    PointCloud pc = media::read_point_cloud_bytes(bytes, name, o);
    ASSERT_EQ(pc.size(), 2000) << name;
    int lower = 0;
    for (int64_t i = 0; i < pc.size(); ++i) {
      EXPECT_EQ(pc.xyz[i * 3 + 2], 0.f);
      EXPECT_GE(pc.xyz[i * 3], 0.f);
      EXPECT_LE(pc.xyz[i * 3], 1.f);
      lower += pc.xyz[i * 3 + 1] < pc.xyz[i * 3];  // below the diagonal = first triangle
    }
    EXPECT_NEAR(lower / 2000.0, 0.5, 0.05) << name;  // equal areas -> equal shares
    EXPECT_FALSE(pc.had_colour);
    if (first.size() == 0) first = pc;
    else EXPECT_EQ(pc.xyz, first.xyz) << name << " samples differently from the OBJ of the same mesh";
  }
  o.mesh_seed = 4;
  EXPECT_NE(media::read_point_cloud_bytes(kSquareObj, "sq.obj", o).xyz, first.xyz);
}

TEST(PointCloudIo, SamplingIsAreaWeighted) {
  media::TriangleMesh m;
  m.vertices = {0, 0, 0, 1, 0, 0, 0, 1, 0, 10, 0, 0, 13, 0, 0, 10, 1, 0};  // areas 0.5 and 1.5
  m.triangles = {0, 1, 2, 3, 4, 5};
  PointCloud pc = media::sample_mesh_surface(m, 4000, 9, "m");
  int big = 0;
  for (int64_t i = 0; i < pc.size(); ++i) big += pc.xyz[i * 3] >= 10.f;
  EXPECT_NEAR(big / 4000.0, 0.75, 0.03);
}

TEST(PointCloudIo, FixturePlyNpyAndSafetensorsHoldTheSameCloud) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string name : {"train", "toilet", "BBQ"}) {
    auto a = media::read_point_cloud_file(testkit::shared_path("fixtures/uni3d_mini/inputs/" + name + ".ply"));
    auto b = media::read_point_cloud_file(testkit::shared_path("fixtures/uni3d_mini/inputs/" + name + ".safetensors"));
    // the original OmniBind asset: a pickled {'xyz','rgb', captions, features...} dict, float16
    auto c = media::read_point_cloud_file(testkit::shared_path("fixtures/uni3d_mini/inputs/" + name + ".npy"));
    EXPECT_EQ(a.xyz, b.xyz) << name;
    EXPECT_EQ(a.rgb, b.rgb) << name;
    EXPECT_EQ(c.xyz, b.xyz) << name;
    EXPECT_EQ(c.rgb, b.rgb) << name;
    EXPECT_TRUE(c.had_colour);
    EXPECT_EQ(a.size(), 10000);
  }
  auto p = media::read_point_cloud_file(testkit::shared_path("fixtures/uni3d_mini/inputs/chair_0890.pcd"));
  EXPECT_EQ(p.size(), 1024);
  EXPECT_FALSE(p.had_colour);
}

// ---- bad input: one-line InputError naming the file, never a crash or a huge allocation.
void expect_input_error(const std::string& bytes, const std::string& name, const std::string& needle) {
  try {
    media::read_point_cloud_bytes(bytes, name);
    ADD_FAILURE() << name << ": no error";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << name << ": " << msg;
  }
}

TEST(PointCloudIoBadInput, EmptyFilesAndEmptyClouds) {
  expect_input_error("", "e.ply", "empty");
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\nend_header\n",
                     "zero.ply", "empty");
  expect_input_error(npy("<f4", "(0, 3)", ""), "zero.npy", "empty");
}

TEST(PointCloudIoBadInput, NanAndInfCoordinates) {
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
                     "1 2 3\nnan 0 0\n", "nan.ply", "non-finite");
  std::string p;
  for (float v : {1.f, 2.f, 3.f, INFINITY, 0.f, 0.f}) put<float>(p, v);
  expect_input_error(npy("<f4", "(2, 3)", p), "inf.npy", "non-finite");
}

TEST(PointCloudIoBadInput, MalformedHeaders) {
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n", "nohdr.ply", "end_header");
  expect_input_error("ply\nformat weird 1.0\nend_header\n", "fmt.ply", "format");
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n",
                     "noz.ply", "z");
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n1 2\n\n\n\n\n",
                     "short.ply", "ends early");
  expect_input_error("# .PCD v0.7\nFIELDS x y z\nSIZE 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n", "size.pcd", "SIZE");
  expect_input_error("# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA zip\n", "kind.pcd", "DATA");
  expect_input_error("OFF\n4 abc 0\n", "bad.off", "face count");
  expect_input_error(npy("<i4", "(2, 3)", std::string(24, '\0')), "int.npy", "dtype");
  expect_input_error(npy("<f4", "(2, 4)", std::string(32, '\0')), "four.npy", "[N, 3]");
  expect_input_error(npy("|O", "()", "\x80\x03."), "pickle.npy", "pickled");
  // a pickle that would run code: refused before anything is called
  expect_input_error(npy("|O", "()", std::string("\x80\x03" "cos\nsystem\nX\x02\x00\x00\x00" "lsR.", 22)), "evil.npy",
                     "refusing the global os.system");
  expect_input_error(npy("|O", "()", std::string("\x80\x03}q\x00.", 6)), "nokeys.npy", "no 'xyz'");
  expect_input_error("hello", "x.xyzw", "unrecognised");
  expect_input_error("not stl at all", "x.stl", "STL");
}

TEST(PointCloudIoBadInput, HugeCountsInATinyFile) {
  expect_input_error("ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\nproperty float y\n"
                     "property float z\nend_header\n\x01\x02", "huge.ply", "declares");
  expect_input_error("ply\nformat ascii 1.0\nelement vertex 999999999999\nproperty float x\nproperty float y\nproperty float z\n"
                     "end_header\n1 2 3\n", "hugea.ply", "declares");
  expect_input_error("# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 3000000000\nHEIGHT 1\nPOINTS 3000000000\nDATA binary\n"
                     "\x01\x02\x03", "huge.pcd", "declares");
  expect_input_error("OFF\n2000000000 1000000000 0\n0 0 0\n", "huge.off", "declares");
  expect_input_error(npy("<f4", "(1000000000, 3)", std::string(12, '\0')), "huge.npy", "declares");
  std::string stl(80, ' ');
  put<uint32_t>(stl, 100000000);  // count does not match the size, no 'solid': rejected as not STL
  expect_input_error(stl, "huge.stl", "STL");
}

TEST(PointCloudIoBadInput, DegenerateMeshes) {
  expect_input_error("v 0 0 0\nv 1 1 1\nv 2 2 2\nf 1 2 3\n", "line.obj", "zero");  // collinear: zero area
  expect_input_error("v 0 0 0\nv 1 0 0\n", "nofaces.obj", "no faces");
  expect_input_error("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "badidx.obj", "out of range");
  expect_input_error("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "badidx.off", "out of range");
}

TEST(PointCloudIoBadInput, MissingFileNamesThePath) {
  try {
    media::read_point_cloud_file("/nonexistent/cloud.ply");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cloud.ply"), std::string::npos);
  }
}

}  // namespace
