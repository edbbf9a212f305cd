#include "omnibind/experts/weights_file.h"

#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#if __has_include("omnibind/tensor_io/checkpoint.h")
#include "omnibind/tensor_io/checkpoint.h"
#define OMNIBIND_HAVE_CHECKPOINT 1
#endif

namespace omnibind::experts {

tensor_io::StateDict open_weights(const std::string& path) {
  std::error_code ec;
  require(std::filesystem::is_regular_file(path, ec), path + ": weights file not found");
#ifdef OMNIBIND_HAVE_CHECKPOINT
  return tensor_io::load_checkpoint(path);
#else
  require(tensor_io::looks_like_safetensors(path), path + ": not a safetensors file (.pt/.pth loading is not built in)");
  return tensor_io::read_safetensors(path).tensors;
#endif
}

}  // namespace omnibind::experts
