// IDX reader: hand-made files (plain and gzip) round-trip; malformed headers and payloads are one
// InputError each; the real MNIST test set (../shared) has the documented sizes and first labels.
#include "omnibind/media/idx_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "omnibind/common/error.h"
#include "testing/test_support.h"

using omnibind::InputError;
namespace media = omnibind::media;

namespace {

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string images_bytes(uint32_t n, uint32_t r, uint32_t c) {
  std::string b = std::string("\0\0\x08\x03", 4) + be32(n) + be32(r) + be32(c);
  for (uint32_t i = 0; i < n * r * c; ++i) b.push_back(static_cast<char>(i % 251));
  return b;
}
std::string labels_bytes(const std::vector<uint8_t>& l) {
  std::string b = std::string("\0\0\x08\x01", 4) + be32(static_cast<uint32_t>(l.size()));
  for (auto v : l) b.push_back(static_cast<char>(v));
  return b;
}
std::string write(const std::string& dir, const std::string& name, const std::string& bytes, bool gz = false) {
  std::string path = dir + "/" + name;
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  return path;
}
}  // namespace

TEST(IdxReader, ReadsPlainAndGzipImagesAndLabels) {
  auto dir = omnibind::testkit::make_temp_dir("idx");
  for (bool gz : {false, true}) {
    auto im = media::read_idx_images(write(dir, gz ? "i.gz" : "i", images_bytes(3, 4, 5), gz));
    EXPECT_EQ(im.count, 3);
    EXPECT_EQ(im.rows, 4);
    EXPECT_EQ(im.cols, 5);
    ASSERT_EQ(im.pixels.size(), 60u);
    EXPECT_EQ(im.image(2)[1], 41);
    auto l = media::read_idx_labels(write(dir, gz ? "l.gz" : "l", labels_bytes({7, 2, 1}), gz));
    EXPECT_EQ(l, (std::vector<uint8_t>{7, 2, 1}));
  }
}

TEST(IdxReader, MalformedFilesAreOneLineInputErrors) {
  auto good = images_bytes(2, 3, 3);
  struct Case {
    std::string bytes, expect;
  };
  std::vector<Case> cases{
      {"", "too short"},
      {std::string("\x01\0\x08\x03", 4) + good.substr(4), "bad magic"},
      {std::string("\0\0\x0D\x03", 4) + good.substr(4), "not unsigned byte"},
      {labels_bytes({1, 2}), "rank 1"},
      {good.substr(0, 10), "header truncated"},
      {good.substr(0, good.size() - 1), "truncated"},
      {good + "x", "trailing bytes"},
      {std::string("\0\0\x08\x03", 4) + be32(0) + be32(3) + be32(3), "dimension 0 is 0"},
      {std::string("\0\0\x08\x03", 4) + be32(65536) + be32(65536) + be32(2), "overflow"},
  };
  for (const auto& c : cases) {
    std::string e = omnibind::testkit::input_error_of([&] { media::parse_idx_images(c.bytes, "x.idx"); });
    EXPECT_NE(e.find("x.idx: "), std::string::npos) << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(omnibind::testkit::input_error_of([&] { media::parse_idx_labels(good, "y"); }).find("rank 3"), std::string::npos);
  EXPECT_NE(omnibind::testkit::input_error_of([&] { media::parse_idx_labels(labels_bytes({1, 2}) + "z", "y"); }).find("trailing"), std::string::npos);
  auto dir = omnibind::testkit::make_temp_dir("idx_bad");
  EXPECT_NE(omnibind::testkit::input_error_of([&] { media::read_idx_images(dir + "/missing.gz"); }).find("no such file"), std::string::npos);
  // A gzip file cut short is reported, not read as a shorter image file.
  std::string gz_path = write(dir, "cut.gz", images_bytes(50, 28, 28), true);
  std::string gz;
  {
    std::ifstream in(gz_path, std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  write(dir, "cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_FALSE(omnibind::testkit::input_error_of([&] { media::read_idx_images(gz_path); }).empty());
}

TEST(IdxReader, ReadsTheMnistTestSet) {
  OMNIBIND_REQUIRE_SHARED();
  auto im = media::read_idx_images(omnibind::testkit::shared_path("data/mnist_test/t10k-images-idx3-ubyte.gz"));
  auto l = media::read_idx_labels(omnibind::testkit::shared_path("data/mnist_test/t10k-labels-idx1-ubyte.gz"));
  EXPECT_EQ(im.count, 10000);
  EXPECT_EQ(im.rows, 28);
  EXPECT_EQ(im.cols, 28);
  ASSERT_EQ(l.size(), 10000u);
  EXPECT_EQ((std::vector<uint8_t>(l.begin(), l.begin() + 10)), (std::vector<uint8_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}));
  int64_t sum = 0;
  for (auto p : im.pixels) sum += p;
  EXPECT_GT(sum, 0);
}
