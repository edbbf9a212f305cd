#include "omnibind/tensor_io/checkpoint_writer.h"

#include <algorithm>
#include <cctype>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_writer.h"

namespace omnibind::tensor_io {

bool is_torch_checkpoint_path(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return false;
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".pt" || ext == ".pth";
}

void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  if (is_torch_checkpoint_path(path)) {
    TorchWriteOptions options;
    options.metadata = metadata;
    write_torch_checkpoint(path, tensors, options);
  } else {
    write_safetensors(path, tensors, metadata);
  }
}

}  // namespace omnibind::tensor_io
