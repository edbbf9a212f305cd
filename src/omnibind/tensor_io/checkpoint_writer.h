// Writing tensors in the format the output path asks for: `.pt` / `.pth` -> a torch.save zip
// archive (loads in PyTorch with torch.load(weights_only=True)), anything else -> safetensors.
// Used by every verb that writes tensors (fuse, train, convert, ...), so users choose by extension.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

// True for ".pt" / ".pth" (case-insensitive).
bool is_torch_checkpoint_path(const std::string& path);

// Atomic. torch files have no place for string metadata (a state dict holds tensors only), so
// `metadata` is written to safetensors outputs only.
void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace omnibind::tensor_io
