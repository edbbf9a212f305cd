#include "omnibind/media/idx_reader.h"

#include <zlib.h>

#include <filesystem>

#include "omnibind/common/error.h"

namespace omnibind::media {

namespace {

// The whole file, gunzipped when it is gzip (gzread passes plain files through unchanged).
std::string read_maybe_gz(const std::string& path) {
  require(std::filesystem::is_regular_file(path), path + ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  require(f != nullptr, path + ": cannot open");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw InputError(path + ": corrupt gzip data (" + msg + ")");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    require(out.size() < (size_t{1} << 32), path + ": larger than 4 GiB, not an IDX file");
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
}

// Validates the header of an unsigned-byte IDX file of rank `ndims`; returns the dims.
std::vector<uint64_t> header(const std::string& b, uint8_t ndims, const std::string& name) {
  const std::string what = ndims == 3 ? "IDX3 image" : "IDX1 label";
  require(b.size() >= 4, name + ": too short for an IDX header (" + std::to_string(b.size()) + " bytes)");
  const uint8_t m0 = static_cast<uint8_t>(b[0]), m1 = static_cast<uint8_t>(b[1]);
  const uint8_t type = static_cast<uint8_t>(b[2]), rank = static_cast<uint8_t>(b[3]);
  require(m0 == 0 && m1 == 0, name + ": not an IDX file (bad magic)");
  require(type == 0x08, name + ": IDX data type " + std::to_string(type) + " is not unsigned byte (8)");
  require(rank == ndims, name + ": IDX file of rank " + std::to_string(rank) + ", expected an " + what + " file (rank " +
                             std::to_string(ndims) + ")");
  const size_t head = 4 + 4 * static_cast<size_t>(ndims);
  require(b.size() >= head, name + ": header truncated (" + std::to_string(b.size()) + " bytes)");
  std::vector<uint64_t> dims;
  uint64_t payload = 1;
  for (uint8_t i = 0; i < ndims; ++i) {
    dims.push_back(be32(b, 4 + 4 * static_cast<size_t>(i)));
    require(dims.back() > 0, name + ": dimension " + std::to_string(i) + " is 0");
    payload *= dims.back();
    require(payload < (uint64_t{1} << 32), name + ": header sizes overflow");
  }
  require(b.size() - head == payload, name + ": header says " + std::to_string(payload) + " data bytes, file has " +
                                          std::to_string(b.size() - head) +
                                          (b.size() - head < payload ? " (truncated)" : " (trailing bytes)"));
  return dims;
}

}  // namespace

IdxImages parse_idx_images(const std::string& bytes, const std::string& name) {
  auto dims = header(bytes, 3, name);
  IdxImages out;
  out.count = static_cast<int64_t>(dims[0]);
  out.rows = static_cast<int64_t>(dims[1]);
  out.cols = static_cast<int64_t>(dims[2]);
  out.pixels.assign(bytes.begin() + 16, bytes.end());
  return out;
}

std::vector<uint8_t> parse_idx_labels(const std::string& bytes, const std::string& name) {
  header(bytes, 1, name);
  return std::vector<uint8_t>(bytes.begin() + 8, bytes.end());
}

IdxImages read_idx_images(const std::string& path) { return parse_idx_images(read_maybe_gz(path), path); }
std::vector<uint8_t> read_idx_labels(const std::string& path) { return parse_idx_labels(read_maybe_gz(path), path); }

}  // namespace omnibind::media
