// MNIST-style IDX files (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): a big-endian header --
// magic 0x00 0x00 <type> <ndims>, then ndims uint32 sizes -- followed by the data in row-major order.
// Only unsigned bytes (type 0x08) are read: IDX3 images [N, rows, cols] and IDX1 labels [N].
// Plain or gzip-compressed files are read alike (the gzip wrapper is detected from the content).
// Every malformed file is one InputError naming the path and what is wrong: bad magic, wrong type
// or rank, zero sizes, or a payload whose length disagrees with the header (truncated / trailing bytes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace omnibind::media {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, image i at i * rows * cols
  const uint8_t* image(int64_t i) const { return pixels.data() + i * rows * cols; }
};

IdxImages read_idx_images(const std::string& path);    // IDX3, magic 0x00000803
std::vector<uint8_t> read_idx_labels(const std::string& path);  // IDX1, magic 0x00000801

// The same from bytes already in memory (decompressed); `name` is used in error messages.
IdxImages parse_idx_images(const std::string& bytes, const std::string& name);
std::vector<uint8_t> parse_idx_labels(const std::string& bytes, const std::string& name);

}  // namespace omnibind::media
