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

// Atomic. `metadata` goes to safetensors' `__metadata__`, or for torch outputs (whose state dict
// holds tensors only) to records `archive/extra/<key>` that torch.load ignores; either way
// load_checkpoint_metadata (checkpoint.h) reads it back.
void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace omnibind::tensor_io
