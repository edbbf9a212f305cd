#include "omnibind/tensor_io/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <limits>

#include "omnibind/common/error.h"

namespace omnibind::tensor_io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22, kCentralSize = 46, kLocalSize = 30;
constexpr size_t kZip64EocdSize = 56, kZip64LocatorSize = 20;
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate cannot expand more than this: bomb guard

uint16_t u16(const std::byte* p) { return static_cast<uint16_t>(uint8_t(p[0]) | uint8_t(p[1]) << 8); }
uint32_t u32(const std::byte* p) { return u16(p) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const std::byte* p) { return u32(p) | static_cast<uint64_t>(u32(p + 4)) << 32; }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError(path + ": invalid zip archive: " + what);
}

// True when [offset, offset + len) lies inside a file of `size` bytes (overflow-safe).
bool inside(uint64_t offset, uint64_t len, uint64_t size) { return offset <= size && len <= size - offset; }

// Replaces 0xFFFF.. placeholders from the ZIP64 extra field (id 1), in the order the spec fixes.
void apply_zip64_extra(const std::string& path, ZipEntry& e, const std::byte* extra, size_t len,
                       bool need_uncompressed, bool need_compressed, bool need_offset) {
  size_t pos = 0;
  while (pos + 4 <= len) {
    uint16_t id = u16(extra + pos), size = u16(extra + pos + 2);
    if (pos + 4 + size > len) break;
    if (id == 0x0001) {
      const std::byte* f = extra + pos + 4;
      size_t want = 8 * (need_uncompressed + need_compressed + need_offset), at = 0;
      if (size < want) fail(path, "entry '" + e.name + "' has a short ZIP64 extra field");
      if (need_uncompressed) e.uncompressed_size = u64(f + at), at += 8;
      if (need_compressed) e.compressed_size = u64(f + at), at += 8;
      if (need_offset) e.local_header_offset = u64(f + at);
      return;
    }
    pos += 4 + size;
  }
  if (need_uncompressed || need_compressed || need_offset)
    fail(path, "entry '" + e.name + "' needs a ZIP64 extra field but has none");
}

}  // namespace

bool ZipArchive::looks_like_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char buf[4];
  return in.read(buf, 4) && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4;
}

ZipArchive ZipArchive::open(const std::string& path) {
  ZipArchive z;
  z.file_ = MappedFile::open(path);
  const std::byte* d = z.file_->data();
  const uint64_t size = z.file_->size();
  if (size < kEocdSize) fail(path, "file is " + std::to_string(size) + " bytes, too short for a zip archive");

  // End of central directory: the last record signature within the final 64 KiB + 22 bytes.
  uint64_t eocd = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = size > kEocdSize + 0xFFFF ? size - kEocdSize - 0xFFFF : 0;
  for (uint64_t p = size - kEocdSize + 1; p-- > lowest;) {
    if (u32(d + p) == kEocdSig && p + kEocdSize + u16(d + p + 20) <= size) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::numeric_limits<uint64_t>::max())
    fail(path, "no end-of-central-directory record (truncated or not a zip file)");
  uint64_t count = u16(d + eocd + 10), cd_size = u32(d + eocd + 12), cd_offset = u32(d + eocd + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < kZip64LocatorSize || u32(d + eocd - kZip64LocatorSize) != kZip64LocatorSig)
      fail(path, "ZIP64 end-of-central-directory locator missing");
    const uint64_t rec = u64(d + eocd - kZip64LocatorSize + 8);
    if (!inside(rec, kZip64EocdSize, size) || u32(d + rec) != kZip64EocdSig)
      fail(path, "ZIP64 end-of-central-directory record missing or outside the file");
    count = u64(d + rec + 32);
    cd_size = u64(d + rec + 40);
    cd_offset = u64(d + rec + 48);
  }
  if (!inside(cd_offset, cd_size, size))
    fail(path, "central directory [" + std::to_string(cd_offset) + ", +" + std::to_string(cd_size) +
                   ") lies outside the file (" + std::to_string(size) + " bytes; truncated?)");
  if (count > cd_size / kCentralSize) fail(path, "central directory claims " + std::to_string(count) + " entries but is too small");

  z.entries_.reserve(count);
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (!inside(pos, kCentralSize, cd_end) || u32(d + pos) != kCentralSig)
      fail(path, "central directory entry " + std::to_string(i) + " is corrupt (bad signature or past its end)");
    const std::byte* h = d + pos;
    const size_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
    if (!inside(pos + kCentralSize, name_len + extra_len + comment_len, cd_end))
      fail(path, "central directory entry " + std::to_string(i) + " runs past the directory");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);
    const uint16_t flags = u16(h + 8);
    e.method = u16(h + 10);
    e.crc32 = u32(h + 16);
    e.compressed_size = u32(h + 20);
    e.uncompressed_size = u32(h + 24);
    e.local_header_offset = u32(h + 42);
    apply_zip64_extra(path, e, h + kCentralSize + name_len, extra_len, e.uncompressed_size == 0xFFFFFFFF,
                      e.compressed_size == 0xFFFFFFFF, e.local_header_offset == 0xFFFFFFFF);
    pos += kCentralSize + name_len + extra_len + comment_len;

    const std::string what = "entry '" + e.name + "'";
    if (flags & 1) fail(path, what + " is encrypted");
    if (e.method != 0 && e.method != 8)
      fail(path, what + " uses compression method " + std::to_string(e.method) + " (only stored and deflated are supported)");
    if (e.method == 0 && e.compressed_size != e.uncompressed_size)
      fail(path, what + " is stored but its sizes differ");
    // The local header's name/extra lengths may differ from the central one (torch pads the
    // local extra field so that data is 64-byte aligned): the data starts after them.
    if (!inside(e.local_header_offset, kLocalSize, cd_offset) || u32(d + e.local_header_offset) != kLocalSig)
      fail(path, what + " has a bad local header offset " + std::to_string(e.local_header_offset));
    const std::byte* l = d + e.local_header_offset;
    e.data_offset = e.local_header_offset + kLocalSize + u16(l + 26) + u16(l + 28);
    if (!inside(e.data_offset, e.compressed_size, cd_offset))
      fail(path, what + " data [" + std::to_string(e.data_offset) + ", +" + std::to_string(e.compressed_size) +
                     ") runs past the end of the entries (truncated?)");
    if (!z.index_.emplace(e.name, z.entries_.size()).second) fail(path, "duplicate " + what);
    z.entries_.push_back(std::move(e));
  }
  return z;
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

ZipBytes ZipArchive::read(const std::string& name, bool verify_crc) const {
  const ZipEntry* e = find(name);
  if (!e) throw InputError(path() + ": zip archive has no entry '" + name + "'");
  return read(*e, verify_crc);
}

ZipBytes ZipArchive::read(const ZipEntry& e, bool verify_crc) const {
  const std::byte* src = file_->data() + e.data_offset;
  const std::string what = path() + ": zip entry '" + e.name + "' ";
  auto check_crc = [&](const std::byte* p, uint64_t n) {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < n;) {  // zlib takes uInt lengths
      const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n - done, 1u << 30));
      crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p + done), chunk);
      done += chunk;
    }
    if (crc != e.crc32) throw InputError(what + "fails its CRC check (corrupt archive)");
  };
  if (e.method == 0) {
    if (verify_crc) check_crc(src, e.uncompressed_size);
    return {src, static_cast<size_t>(e.uncompressed_size), file_};
  }
  if (e.uncompressed_size > e.compressed_size * kMaxDeflateRatio + 1024)
    throw InputError(what + "claims an impossible inflated size " + std::to_string(e.uncompressed_size));
  auto buf = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(e.uncompressed_size));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw std::runtime_error("zlib inflateInit2 failed");
  uint64_t in_left = e.compressed_size, out_left = e.uncompressed_size;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(src));
  zs.next_out = reinterpret_cast<Bytef*>(buf->data());
  int rc = Z_OK;
  while (rc == Z_OK) {
    const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
    const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
    zs.avail_in = in_chunk;
    zs.avail_out = out_chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= in_chunk - zs.avail_in;
    out_left -= out_chunk - zs.avail_out;
    if (rc == Z_OK && zs.avail_out != 0 && in_left == 0) rc = Z_BUF_ERROR;  // input ran out
    if (rc == Z_OK && out_left == 0 && zs.avail_out == 0) {
      // Output full: only the end-of-stream marker may remain.
      Bytef probe;
      zs.next_out = &probe;
      zs.avail_out = 1;
      zs.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      rc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0) rc = Z_DATA_ERROR;  // more data than declared
    }
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_left != 0)
    throw InputError(what + "does not inflate to its declared " + std::to_string(e.uncompressed_size) +
                     " bytes (corrupt or truncated deflate stream)");
  check_crc(buf->data(), e.uncompressed_size);
  return {buf->data(), buf->size(), buf};
}

}  // namespace omnibind::tensor_io
