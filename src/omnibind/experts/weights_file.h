// Opens an expert's weights file as a state dict: safetensors (mmap, zero copy) or, through
// tensor_io's checkpoint loader, a torch .pt/.pth state dict.
#pragma once
#include <string>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts {

// InputError naming the path when it is missing or in no format we read.
tensor_io::StateDict open_weights(const std::string& path);

}  // namespace omnibind::experts
