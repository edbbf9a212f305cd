#include "omnibind/tensor_io/checkpoint.h"

#include <cstring>
#include <fstream>
#include <unordered_set>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_file.h"
#include "omnibind/tensor_io/zip_archive.h"

namespace omnibind::tensor_io {

using Kind = PickleValue::Kind;

namespace {

constexpr int kMaxFlattenDepth = 64;
constexpr size_t kMaxFlattenVisits = size_t{1} << 20;  // shared sub-objects could otherwise blow up

const char* const kWrapperKeys[] = {"module", "model", "state_dict", "model_state_dict"};

// Each object is visited once: pickles can share sub-objects, and a chain of lists that each hold
// the next one twice would otherwise take exponential time.
bool has_tensor(const PickleRef& v, std::unordered_set<const PickleValue*>& seen, int depth = 0) {
  if (v->kind == Kind::Tensor) return true;
  if (depth > kMaxFlattenDepth || !v->is_container() || !seen.insert(v.get()).second) return false;
  if (v->kind == Kind::Dict) {
    for (size_t i = 0; i < v->dict_size(); ++i)
      if (has_tensor(v->dict_value(i), seen, depth + 1)) return true;
  } else {
    for (auto& c : v->items)
      if (has_tensor(c, seen, depth + 1)) return true;
  }
  return false;
}

bool has_tensor(const PickleRef& v) {
  std::unordered_set<const PickleValue*> seen;
  return has_tensor(v, seen);
}

std::string key_text(const PickleValue& k) {
  if (k.kind == Kind::Str) return k.s;
  if (k.kind == Kind::Int) return std::to_string(k.i);
  return "";
}

std::string list_keys(const PickleRef& dict) {
  if (dict->kind != Kind::Dict) return "(it is a " + dict->type_name() + ", not a dict)";
  std::string out;
  const size_t n = dict->dict_size();
  for (size_t i = 0; i < n && i < 20; ++i) out += (i ? ", " : "") + dict->dict_key(i)->repr(40);
  if (n > 20) out += ", ... (" + std::to_string(n) + " keys)";
  return n ? "available keys: " + out : "the dict is empty";
}

void flatten(const PickleRef& v, const std::string& prefix, StateDict& out, int depth, size_t& visits) {
  if (++visits > kMaxFlattenVisits) throw InputError(out.source() + ": checkpoint object graph is too large to flatten");
  if (depth > kMaxFlattenDepth)
    throw InputError(out.source() + ": checkpoint nests containers deeper than " + std::to_string(kMaxFlattenDepth) + " levels");
  auto child = [&](const std::string& part) { return prefix.empty() ? part : prefix + "." + part; };
  switch (v->kind) {
    case Kind::Tensor: {
      if (out.contains(prefix)) throw InputError(out.source() + ": tensor name '" + prefix + "' occurs twice after flattening");
      out.add(prefix, to_raw_tensor(*v->tensor, out.source(), prefix));
      break;
    }
    case Kind::Dict:
      for (size_t i = 0; i < v->dict_size(); ++i) {
        std::string k = key_text(*v->dict_key(i));
        if (!k.empty()) flatten(v->dict_value(i), child(k), out, depth + 1, visits);
      }
      break;
    case Kind::List: case Kind::Tuple:
      for (size_t i = 0; i < v->items.size(); ++i) flatten(v->items[i], child(std::to_string(i)), out, depth + 1, visits);
      break;
    default: break;  // ints, strings, None...: not tensors
  }
}

// Walks a dotted path; keys may themselves contain dots ("module.encoder" as one key), so the
// longest key matching a prefix of the remaining path wins.
PickleRef select_path(const std::string& file, const PickleRef& root, const std::string& path) {
  PickleRef cur = root;
  std::string rest = path;
  while (!rest.empty()) {
    if (cur->kind != Kind::Dict)
      throw InputError(file + ": cannot select '" + path + "': reached a " + cur->type_name() + " before '" + rest + "'");
    PickleRef next;
    size_t used = rest.size();
    for (;;) {
      if ((next = cur->dict_get(rest.substr(0, used)))) break;
      const size_t dot = rest.rfind('.', used - 1);
      if (dot == std::string::npos || dot == 0) break;
      used = dot;
    }
    if (!next) throw InputError(file + ": checkpoint has no entry '" + path + "' to select; " + list_keys(cur));
    cur = next;
    rest = used < rest.size() ? rest.substr(used + 1) : "";
  }
  return cur;
}

StateDict load_safetensors_checkpoint(const std::string& path, const CheckpointOptions& options) {
  StateDict all = read_safetensors(path).tensors;
  if (options.select.empty() || options.select == "auto") return all;
  StateDict sub = all.with_prefix(options.select + ".");
  if (sub.empty()) {
    std::string prefixes;
    size_t shown = 0;
    for (auto& n : all.names()) {
      std::string first = n.substr(0, n.find('.'));
      if (prefixes.find("'" + first + "'") == std::string::npos && shown++ < 20) prefixes += (shown > 1 ? ", '" : "'") + first + "'";
    }
    throw InputError(path + ": no tensors under '" + options.select + ".' to select; top-level names: " + prefixes);
  }
  return sub;
}

}  // namespace

CheckpointFormat detect_checkpoint_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + path + ": " + std::strerror(errno));
  char head[512] = {};
  in.read(head, sizeof head);
  const size_t n = static_cast<size_t>(in.gcount());
  // safetensors first: its 8-byte header length may start with any byte, 0x80 included.
  if (looks_like_safetensors(path)) return CheckpointFormat::Safetensors;
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return CheckpointFormat::TorchZip;
  if (n >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && static_cast<unsigned char>(head[1]) <= 5)
    return CheckpointFormat::TorchLegacy;  // a pickle: the loader checks torch's magic number
  if (n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0)
    throw InputError(path + ": tar-format torch checkpoints (torch < 0.4) are not supported; re-save it with a newer torch");
  throw InputError(path + ": not a supported checkpoint (expected safetensors, a torch.save zip archive or a legacy torch.save file)");
}

std::string checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::Safetensors: return "safetensors";
    case CheckpointFormat::TorchZip: return "torch.save zip archive";
    case CheckpointFormat::TorchLegacy: return "legacy torch.save file";
  }
  return "?";
}

std::map<std::string, std::string> load_checkpoint_metadata(const std::string& path) {
  switch (detect_checkpoint_format(path)) {
    case CheckpointFormat::Safetensors: return read_safetensors(path).metadata;
    case CheckpointFormat::TorchZip: return read_torch_zip_metadata(path);
    case CheckpointFormat::TorchLegacy: return {};
  }
  return {};
}

std::string checkpoint_metadata_location(CheckpointFormat format, const std::string& key) {
  return format == CheckpointFormat::Safetensors ? "__metadata__." + key : "extra/" + key + " record";
}

PickleRef load_torch_object(const std::string& path) {
  switch (detect_checkpoint_format(path)) {
    case CheckpointFormat::TorchZip: return read_torch_zip(path).root;
    case CheckpointFormat::TorchLegacy: return read_torch_legacy(path).root;
    default: throw InputError(path + ": is a safetensors file, not a torch.save file");
  }
}

void flatten_tensors(const PickleRef& value, const std::string& prefix, StateDict& out) {
  size_t visits = 0;
  flatten(value, prefix, out, 0, visits);
}

StateDict load_checkpoint(const std::string& path, const CheckpointOptions& options) {
  const CheckpointFormat format = detect_checkpoint_format(path);
  if (format == CheckpointFormat::Safetensors) return load_safetensors_checkpoint(path, options);
  PickleRef root = format == CheckpointFormat::TorchZip ? read_torch_zip(path).root : read_torch_legacy(path).root;

  PickleRef chosen = root;
  if (options.select == "auto") {
    if (root->kind == Kind::Dict) {
      PickleRef wrapped;
      int found = 0;
      for (const char* k : kWrapperKeys) {
        PickleRef v = root->dict_get(k);
        if (v && v->kind == Kind::Dict && has_tensor(v)) wrapped = v, ++found;
      }
      if (found == 1) chosen = wrapped;
    }
  } else if (!options.select.empty()) {
    chosen = select_path(path, root, options.select);
    if (chosen->kind != Kind::Dict)
      throw InputError(path + ": selected entry '" + options.select + "' is a " + chosen->type_name() + ", not a dict of tensors");
  }
  StateDict out(path);
  flatten_tensors(chosen, "", out);
  if (out.empty())
    throw InputError(path + ": checkpoint holds no tensors" +
                     (chosen->kind == Kind::Dict ? " (" + list_keys(chosen) + ")" : " (it holds a " + chosen->type_name() + ")"));
  return out;
}

}  // namespace omnibind::tensor_io
