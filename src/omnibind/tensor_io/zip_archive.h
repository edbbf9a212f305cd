// Read-only access to zip archives as torch.save writes them (PyTorch's "zip" serialization):
// the file is mmap'ed, the central directory (ZIP64 included) is parsed and validated up front,
// STORED entries are zero-copy views into the mapping and DEFLATED ones are inflated into an
// owned buffer. Every defect is an InputError naming the archive and the entry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "omnibind/tensor_io/mapped_file.h"

namespace omnibind::tensor_io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;             // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;        // where the (compressed) bytes start, resolved from the local header
};

// Bytes of one entry; `owner` keeps them alive (the mapping or an inflated buffer).
struct ZipBytes {
  const std::byte* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;
  std::string_view view() const { return {reinterpret_cast<const char*>(data), size}; }
};

class ZipArchive {
 public:
  // Maps and indexes the archive; InputError when it is not a well-formed zip file.
  static ZipArchive open(const std::string& path);
  // True when the file starts with a local file header ("PK\3\4").
  static bool looks_like_zip(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  // The entry's contents. STORED: a view into the mapping. DEFLATED: inflated (size and CRC
  // checked). `verify_crc` also checks STORED entries (touches every page of them).
  // InputError "<archive>: entry '<name>' ..." when absent or damaged.
  ZipBytes read(const std::string& name, bool verify_crc = false) const;
  ZipBytes read(const ZipEntry& entry, bool verify_crc = false) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace omnibind::tensor_io
