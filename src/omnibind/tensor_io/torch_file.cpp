#include "omnibind/tensor_io/torch_file.h"

#include <cstring>
#include <map>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/mapped_file.h"
#include "omnibind/tensor_io/safe_unpickler.h"
#include "omnibind/tensor_io/zip_archive.h"

namespace omnibind::tensor_io {

using Kind = PickleValue::Kind;

namespace {

// Points the storage at `bytes`, copying into an aligned buffer when the bytes are not aligned
// for the element type (legacy files put an 8-byte count before each storage at any offset).
void set_storage_bytes(TorchStorage& s, const std::byte* data, size_t bytes, std::shared_ptr<const void> owner) {
  const size_t align = dtype_size(s.dtype);
  if (reinterpret_cast<uintptr_t>(data) % align != 0) {
    auto copy = std::make_shared<std::vector<std::byte>>(data, data + bytes);  // new[] is 16-aligned
    data = copy->data();
    owner = copy;
  }
  s.data = data;
  s.bytes = bytes;
  s.owner = std::move(owner);
  s.resolved = true;
}

// Fields of a persistent id ('storage', storage_type, key, location, numel[, view_metadata]).
struct StorageId {
  DType dtype = DType::F32;
  std::string key;
  int64_t numel = 0;
  PickleRef view_metadata;  // legacy only; None or (view_key, offset, size)
};

StorageId parse_storage_id(const std::string& file, const PickleRef& pid) {
  auto bad = [&](const std::string& why) -> InputError {
    return InputError(file + ": unsupported persistent id in pickle: " + why);
  };
  if (pid->kind != Kind::Tuple || pid->items.empty()) throw bad("expected a tuple, got " + pid->type_name());
  const auto& it = pid->items;
  if (it[0]->kind != Kind::Str) throw bad("first item is a " + it[0]->type_name());
  if (it[0]->s == "module") throw bad("the file holds a pickled nn.Module (torch.save(model)); save model.state_dict() instead");
  if (it[0]->s != "storage" || it.size() < 5) throw bad("'" + it[0]->s + "' with " + std::to_string(it.size()) + " fields");
  StorageId id;
  if (it[1]->kind != Kind::Global || !storage_type_dtype(it[1]->s, id.dtype))
    throw bad("storage type " + it[1]->type_name() + " is not a supported torch storage");
  if (it[2]->kind == Kind::Str) id.key = it[2]->s;
  else if (it[2]->kind == Kind::Int) id.key = std::to_string(it[2]->i);
  else throw bad("storage key is a " + it[2]->type_name());
  if (it[4]->kind != Kind::Int || it[4]->i < 0) throw bad("storage size is not a non-negative int");
  id.numel = it[4]->i;
  if (it.size() > 5) id.view_metadata = it[5];
  return id;
}

std::string check_byteorder(const ZipArchive& zip, const std::string& prefix) {
  if (const ZipEntry* e = zip.find(prefix + "byteorder")) {
    std::string order(zip.read(*e, true).view());
    if (order != "little")
      throw InputError(zip.path() + ": checkpoint byte order is '" + order.substr(0, 16) + "'; only little-endian is supported");
  }
  return prefix;
}

}  // namespace

namespace {

// The pickle's entry, "<folder>/data.pkl" (the folder name is whatever torch.save chose);
// InputError when the archive is not a torch.save checkpoint.
std::string find_pickle_entry(const ZipArchive& zip, const std::string& path) {
  for (auto& e : zip.entries()) {
    const auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) return e.name;
  }
  for (auto& e : zip.entries())
    if (e.name.find("constants.pkl") != std::string::npos || e.name.find("/code/") != std::string::npos)
      throw InputError(path + ": this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                              "save the model's state_dict() with torch.save instead");
  throw InputError(path + ": zip archive has no '<name>/data.pkl' entry; not a torch.save checkpoint");
}

}  // namespace

std::map<std::string, std::string> read_torch_zip_metadata(const std::string& path) {
  const ZipArchive zip = ZipArchive::open(path);
  const std::string pkl = find_pickle_entry(zip, path);
  const std::string extra = pkl.substr(0, pkl.size() - std::strlen("data.pkl")) + "extra/";
  std::map<std::string, std::string> out;
  for (auto& e : zip.entries()) {
    if (e.name.size() <= extra.size() || e.name.compare(0, extra.size(), extra) != 0) continue;
    const std::string key = e.name.substr(extra.size());
    if (key.find('/') == std::string::npos) out[key] = std::string(zip.read(e, /*verify_crc=*/true).view());
  }
  return out;
}

TorchFile read_torch_zip(const std::string& path) {
  auto zip = std::make_shared<ZipArchive>(ZipArchive::open(path));
  const std::string pkl = find_pickle_entry(*zip, path);
  const std::string prefix = pkl.substr(0, pkl.size() - std::strlen("data.pkl"));
  check_byteorder(*zip, prefix);
  ZipBytes pickle = zip->read(pkl, /*verify_crc=*/true);

  std::map<std::string, ZipBytes> bytes_by_key;  // one entry per key, shared by dtype views
  std::map<std::pair<std::string, DType>, std::shared_ptr<TorchStorage>> storages;
  auto load_storage = [&](const PickleRef& pid) -> PickleRef {
    StorageId id = parse_storage_id(path, pid);
    auto& slot = storages[{id.key, id.dtype}];
    if (!slot) {
      auto it = bytes_by_key.find(id.key);
      if (it == bytes_by_key.end()) {
        const std::string entry = prefix + "data/" + id.key;
        if (!zip->find(entry))
          throw InputError(path + ": zip archive has no entry '" + entry + "' for a storage the pickle references");
        it = bytes_by_key.emplace(id.key, zip->read(entry)).first;
      }
      const ZipBytes& b = it->second;
      const uint64_t need = static_cast<uint64_t>(id.numel) * dtype_size(id.dtype);
      if (id.numel > (int64_t{1} << 56) || b.size < need)
        throw InputError(path + ": zip entry '" + prefix + "data/" + id.key + "' holds " + std::to_string(b.size) +
                         " bytes but its storage declares " + std::to_string(id.numel) + " elements of " +
                         std::string(dtype_name(id.dtype)));
      slot = std::make_shared<TorchStorage>();
      slot->key = id.key;
      slot->dtype = id.dtype;
      slot->numel = id.numel;
      set_storage_bytes(*slot, b.data, static_cast<size_t>(need), b.owner);
    }
    auto v = make_value(Kind::Storage);
    v->storage = slot;
    return v;
  };
  SafeUnpickler up(path, pkl, pickle.data, pickle.size, load_storage);
  TorchFile out;
  out.kind = TorchFileKind::Zip;
  out.archive_name = prefix.substr(0, prefix.size() - 1);
  out.root = up.load();
  return out;
}

TorchFile read_torch_legacy(const std::string& path) {
  auto file = MappedFile::open(path);
  const std::byte* base = file->data();
  const size_t size = file->size();

  std::map<std::string, std::shared_ptr<TorchStorage>> roots;  // by key, in first-seen order of use
  struct View {
    std::shared_ptr<TorchStorage> storage, root;
    int64_t offset;  // elements into root
  };
  std::vector<View> views;
  std::map<std::string, std::shared_ptr<TorchStorage>> view_cache;
  auto load_storage = [&](const PickleRef& pid) -> PickleRef {
    StorageId id = parse_storage_id(path, pid);
    auto& root = roots[id.key];
    if (!root) {
      root = std::make_shared<TorchStorage>();
      root->key = id.key;
      root->dtype = id.dtype;
      root->numel = id.numel;
    } else if (root->dtype != id.dtype || root->numel != id.numel) {
      throw InputError(path + ": storage '" + id.key + "' is referenced with conflicting types or sizes");
    }
    auto v = make_value(Kind::Storage);
    v->storage = root;
    if (id.view_metadata && id.view_metadata->kind != Kind::None) {
      // Storage views (torch < 0.4): (view_key, offset, view_size) into the root storage.
      const auto& vm = id.view_metadata;
      if (vm->kind != Kind::Tuple || vm->items.size() != 3 || vm->items[0]->kind != Kind::Str ||
          vm->items[1]->kind != Kind::Int || vm->items[2]->kind != Kind::Int || vm->items[1]->i < 0 ||
          vm->items[2]->i < 0 || vm->items[1]->i > id.numel || vm->items[2]->i > id.numel - vm->items[1]->i)
        throw InputError(path + ": malformed storage view metadata for storage '" + id.key + "'");
      auto& view = view_cache[vm->items[0]->s];
      if (!view) {
        view = std::make_shared<TorchStorage>();
        view->key = vm->items[0]->s;
        view->dtype = id.dtype;
        view->numel = vm->items[2]->i;
        views.push_back({view, root, vm->items[1]->i});
      }
      v->storage = view;
    }
    return v;
  };

  SafeUnpickler up(path, "", base, size, load_storage);
  PickleRef magic = up.load();
  static const unsigned char kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};  // 0x1950a86a20f9469cfc6c
  if (magic->kind != Kind::BigInt || magic->s != std::string(reinterpret_cast<const char*>(kMagic), sizeof kMagic))
    throw InputError(path + ": not a torch.save file (legacy magic number missing)");
  PickleRef protocol = up.load();
  if (protocol->kind != Kind::Int || protocol->i != 1001)
    throw InputError(path + ": unsupported legacy torch.save protocol version " + protocol->repr());
  PickleRef sys_info = up.load();
  if (sys_info->kind == Kind::Dict) {
    PickleRef le = sys_info->dict_get("little_endian");
    if (le && le->kind == Kind::Bool && !le->b) throw InputError(path + ": checkpoint was written big-endian; only little-endian is supported");
  }
  TorchFile out;
  out.kind = TorchFileKind::Legacy;
  out.root = up.load();
  PickleRef keys = up.load();
  if (keys->kind != Kind::List) throw InputError(path + ": legacy storage key list is a " + keys->type_name() + ", not a list");

  // After the pickles: for each key, an int64 element count then the raw little-endian bytes.
  size_t pos = up.position();
  for (const auto& k : keys->items) {
    if (k->kind != Kind::Str) throw InputError(path + ": legacy storage key is a " + k->type_name());
    auto it = roots.find(k->s);
    if (it == roots.end()) throw InputError(path + ": storage '" + k->s + "' is listed but no tensor uses it");
    TorchStorage& s = *it->second;
    if (s.resolved) throw InputError(path + ": storage '" + k->s + "' is listed twice");
    if (size - pos < 8) throw InputError(path + ": file is truncated before the data of storage '" + k->s + "'");
    int64_t numel = 0;
    std::memcpy(&numel, base + pos, 8);  // little-endian hosts only (checked above via sys_info)
    pos += 8;
    if (numel != s.numel)
      throw InputError(path + ": storage '" + k->s + "' has " + std::to_string(numel) + " elements in the data section but " +
                       std::to_string(s.numel) + " in the pickle");
    const uint64_t bytes = static_cast<uint64_t>(numel) * dtype_size(s.dtype);
    if (numel < 0 || numel > (int64_t{1} << 56) || bytes > size - pos)
      throw InputError(path + ": file is truncated inside the data of storage '" + k->s + "'");
    set_storage_bytes(s, base + pos, static_cast<size_t>(bytes), file);
    pos += static_cast<size_t>(bytes);
  }
  for (auto& [key, s] : roots)
    if (!s->resolved) throw InputError(path + ": storage '" + key + "' has no data in the file (truncated?)");
  for (auto& v : views) {
    const size_t es = dtype_size(v.root->dtype);
    set_storage_bytes(*v.storage, v.root->data + v.offset * es, static_cast<size_t>(v.storage->numel) * es, v.root->owner);
  }
  return out;
}

RawTensor to_raw_tensor(const TorchTensor& t, const std::string& file, const std::string& name) {
  const TorchStorage& s = *t.storage;
  if (!s.resolved) throw InputError(file + ": tensor '" + name + "' refers to storage '" + s.key + "' that has no data");
  RawTensor r;
  r.dtype = s.dtype;
  r.shape = t.shape;
  r.storage_offset = t.storage_offset;
  r.data = s.data;
  r.storage_bytes = s.bytes;
  r.owner = s.owner;
  // Last element touched: offset + sum((size-1) * stride); must lie inside the storage.
  const uint64_t avail = s.bytes / dtype_size(s.dtype);
  bool empty = false;
  unsigned __int128 last = static_cast<uint64_t>(t.storage_offset);
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] == 0) empty = true;
    else last += static_cast<unsigned __int128>(t.shape[d] - 1) * static_cast<uint64_t>(t.strides[d]);
  }
  unsigned __int128 numel = 1;
  for (auto d : t.shape) {
    numel *= static_cast<uint64_t>(d);
    if (numel > (static_cast<unsigned __int128>(1) << 62)) throw InputError(file + ": tensor '" + name + "' has an absurd size " + r.shape_string());
  }
  if (!empty && last >= avail)
    throw InputError(file + ": tensor '" + name + "' of shape " + r.shape_string() + " at offset " +
                     std::to_string(t.storage_offset) + " reaches past its storage of " + std::to_string(avail) + " elements");
  r.strides = t.strides;
  if (r.is_contiguous()) r.strides.clear();  // empty strides = row-major, what most readers expect
  return r;
}

}  // namespace omnibind::tensor_io
