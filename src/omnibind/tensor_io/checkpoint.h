// One entry point for model weights in any of the formats released checkpoints come in:
// safetensors, torch.save zip archives (.pt/.pth, torch >= 1.6) and legacy torch.save files.
// The format is detected from the file's first bytes, never from its extension. torch files are
// read without Python and without executing anything (see safe_unpickler.h for the policy).
#pragma once
#include <map>
#include <string>

#include "omnibind/tensor_io/pickle_value.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::tensor_io {

struct CheckpointOptions {
  // Which part of the saved object becomes the state dict:
  //  "auto": if the top level is a dict holding exactly one of 'module', 'model', 'state_dict',
  //          'model_state_dict' whose value is a dict with tensors, that dict; else everything.
  //  "":     everything.
  //  other:  that sub-dict, a dotted path allowed ("model.encoder"); InputError listing the
  //          available keys when absent.
  // Nested dicts are flattened into dotted names; non-tensor leaves (epoch, strings) are skipped.
  // For safetensors files (already flat) a non-empty, non-"auto" select keeps the tensors under
  // "<select>." and strips that prefix.
  std::string select = "auto";
};

enum class CheckpointFormat { Safetensors, TorchZip, TorchLegacy };

// From the first bytes; InputError naming the file when it is none of the supported formats
// (including the pre-2018 tar format and TorchScript archives, which are explained).
CheckpointFormat detect_checkpoint_format(const std::string& path);
// "safetensors", "torch.save zip archive", "legacy torch.save file".
std::string checkpoint_format_name(CheckpointFormat format);

// Loads the tensors of a checkpoint. Tensors point into the mapped file where possible.
StateDict load_checkpoint(const std::string& path, const CheckpointOptions& options = {});

// The string metadata stored beside the tensors (what write_checkpoint's `metadata` wrote):
// safetensors' `__metadata__`, a torch zip archive's `<folder>/extra/<key>` records, nothing for a
// legacy torch file. Cheap: the tensors are not read. InputError as detect_checkpoint_format.
std::map<std::string, std::string> load_checkpoint_metadata(const std::string& path);
// Where that metadata lives in this file, for messages: "__metadata__.<key>" (safetensors) or
// "extra/<key> record" (torch files).
std::string checkpoint_metadata_location(CheckpointFormat format, const std::string& key);

// Lower level, torch files only: the whole unpickled object (dicts, lists, ints, strings, tensors
// as PickleValue::Kind::Tensor), e.g. to read an 'epoch' or a config stored beside the weights.
PickleRef load_torch_object(const std::string& path);

// Flattens `value` (dicts/lists of tensors, nested) into `out` with dotted names under `prefix`.
// Non-tensor leaves are skipped. InputError on excessive nesting or duplicate names.
void flatten_tensors(const PickleRef& value, const std::string& prefix, StateDict& out);

}  // namespace omnibind::tensor_io
