// A read-only memory mapping of a whole file, shared by the tensors that point into it.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace omnibind::tensor_io {

class MappedFile {
 public:
  // InputError naming the path when it cannot be opened or mapped. Empty files map to size 0.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace omnibind::tensor_io
