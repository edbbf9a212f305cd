// torch.save files without Python: the zip format (torch >= 1.6 default) and the legacy format
// (_use_new_zipfile_serialization=False). Both are unpickled by SafeUnpickler; storages point
// into the mmap'ed file (zero copy) except deflated zip entries and misaligned legacy storages,
// which are copied. See docs/reference/torch_checkpoints.md for the byte layouts.
#pragma once
#include <map>
#include <string>

#include "omnibind/tensor_io/pickle_value.h"

namespace omnibind::tensor_io {

enum class TorchFileKind { Zip, Legacy };

struct TorchFile {
  TorchFileKind kind = TorchFileKind::Zip;
  std::string archive_name;  // zip: the top-level folder ("archive", "base"); legacy: ""
  PickleRef root;            // the object torch.save was given; every storage resolved
};

// InputError naming the file for anything malformed or refused by the safe-unpickling policy.
TorchFile read_torch_zip(const std::string& path);
TorchFile read_torch_legacy(const std::string& path);

// The string metadata of a zip checkpoint: every record "<folder>/extra/<key>" (what
// write_torch_checkpoint writes for TorchWriteOptions::metadata) as key -> its bytes; empty when
// there are none. Reads the zip directory and those records only (CRC-checked), not the pickle.
std::map<std::string, std::string> read_torch_zip_metadata(const std::string& path);

// A RawTensor view of a rebuilt tensor after checking that its extent fits its storage.
// `name` is used in the error message.
RawTensor to_raw_tensor(const TorchTensor& tensor, const std::string& file, const std::string& name);

}  // namespace omnibind::tensor_io
