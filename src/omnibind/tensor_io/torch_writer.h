// Writing torch.save zip archives without Python, so our checkpoints load in PyTorch code
// (`torch.load(path, weights_only=True)`, torch >= 1.6) and in our own reader. Layout as torch
// writes it: `archive/data.pkl` (a protocol-2 pickle of an OrderedDict name -> tensor rebuilt by
// torch._utils._rebuild_tensor_v2), `archive/data/<N>` (raw little-endian storage bytes),
// `archive/version` ("3"), `archive/byteorder` ("little"); every entry STORED with its data
// 64-byte aligned (padding in the local header's extra field), ZIP64 records when sizes or
// offsets need them. String metadata (what safetensors keeps in `__metadata__`) goes into extra
// records `archive/extra/<key>` (the value's bytes), which torch.load ignores. See
// docs/reference/torch_checkpoints.md ("Writing").
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

struct TorchWriteOptions {
  bool force_zip64 = false;  // ZIP64 records even for small files (tests exercise the large-file path)
  // key -> value, each written as the record `archive/extra/<key>` after the tensors. Keys are
  // 1-128 characters of [A-Za-z0-9_.-], not "." or ".." (InputError otherwise). Empty: the file is
  // byte for byte what it was before metadata existed.
  std::map<std::string, std::string> metadata;
};

// Writes `tensors` in order, atomically (temporary file + rename; `path` is untouched on error).
// Each tensor gets its own compact row-major storage (non-contiguous views are gathered); the same
// tensor listed under several names (same memory, dtype, shape, strides) shares one storage, as
// tied weights do in torch. InputError for an empty name list entry, duplicate or non-UTF-8 names,
// or a bad metadata key.
void write_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, RawTensor>>& tensors,
                            const TorchWriteOptions& options = {});

}  // namespace omnibind::tensor_io
