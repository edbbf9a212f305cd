// SHA-256 (FIPS 180-4) of byte strings and files, for the sha256 records of model bundles. A small
// own implementation (no crypto library dependency); tested against the standard vectors.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace omnibind::pipeline {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // 64 lower-case hex digits; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& bytes);

// Streams the file through SHA-256. `progress(done, total)` is called every few MB when set.
// InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace omnibind::pipeline
