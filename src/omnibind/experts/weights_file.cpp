#include "omnibind/experts/weights_file.h"

#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"

namespace omnibind::experts {

tensor_io::StateDict open_weights(const std::string& path) {
  std::error_code ec;
  require(std::filesystem::is_regular_file(path, ec), path + ": weights file not found");
  return tensor_io::load_checkpoint(path);  // safetensors, torch zip or legacy torch.save
}

}  // namespace omnibind::experts
