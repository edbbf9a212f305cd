// The safetensors format: u64 little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// data. Reading maps the file and points tensors into it (zero copy); writing is atomic.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Validates the header completely (JSON, dtypes, shapes vs byte ranges, ranges inside the file,
// no overlaps past the end); any defect is an InputError naming the file and the tensor.
SafetensorsFile read_safetensors(const std::string& path);

// True when the file starts like a safetensors file (plausible header length followed by '{').
bool looks_like_safetensors(const std::string& path);

// Writes tensors in the given order (non-contiguous tensors are laid out row-major).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace omnibind::tensor_io
