#include "omnibind/preprocess/sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "omnibind/common/error.h"
#include "sentencepiece_shim/sentencepiece_shim.h"

#ifndef OMNIBIND_SENTENCEPIECE_SHIM
#define OMNIBIND_SENTENCEPIECE_SHIM ""
#endif

namespace omnibind::preprocess {

namespace {

struct Shim {
  decltype(&omnibind_spm_load) load = nullptr;
  decltype(&omnibind_spm_free) free = nullptr;
  decltype(&omnibind_spm_piece_size) piece_size = nullptr;
  decltype(&omnibind_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&omnibind_spm_is_control) is_control = nullptr;
  decltype(&omnibind_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&omnibind_spm_encode) encode = nullptr;
};

constexpr const char* kModule = "omnibind_sentencepiece.so";

// The module: $OMNIBIND_SENTENCEPIECE_MODULE, the build tree's copy, or next to the executable
// (or one folder up: tests live in build/tests/).
void* open_module(std::string& tried) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("OMNIBIND_SENTENCEPIECE_MODULE"); env && *env) candidates.push_back(env);
  if (*OMNIBIND_SENTENCEPIECE_SHIM) candidates.push_back(OMNIBIND_SENTENCEPIECE_SHIM);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back((exe.parent_path() / kModule).string());
    candidates.push_back((exe.parent_path().parent_path() / kModule).string());
  }
  for (const auto& path : candidates) {
    if (!std::filesystem::exists(path, ec)) continue;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)) return h;
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + path + ": " + (why ? why : "dlopen failed");
  }
  if (tried.empty()) tried = std::string(kModule) + " not found next to the executable";
  return nullptr;
}

const Shim& shim() {
  static const Shim s = [] {
    std::string tried;
    void* h = open_module(tried);
    if (!h) throw std::runtime_error("SentencePiece support is not available (" + tried + ")");
    Shim r;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      if (!fn) throw std::runtime_error(std::string("SentencePiece module lacks ") + name);
    };
    sym(r.load, "omnibind_spm_load");
    sym(r.free, "omnibind_spm_free");
    sym(r.piece_size, "omnibind_spm_piece_size");
    sym(r.piece_to_id, "omnibind_spm_piece_to_id");
    sym(r.is_control, "omnibind_spm_is_control");
    sym(r.id_to_piece, "omnibind_spm_id_to_piece");
    sym(r.encode, "omnibind_spm_encode");
    return r;
  }();
  return s;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

SentencePieceModel::SentencePieceModel(std::string_view serialized, const std::string& name) : name_(name) {
  char err[512] = {0};
  handle_ = shim().load(serialized.data(), serialized.size(), err, sizeof err);
  if (!handle_) {
    std::string why = one_line(err);
    if (why.find("ParseFromArray") != std::string::npos) why = "not a serialized ModelProto";
    throw InputError(name + ": not a SentencePiece model (" + why + ")");
  }
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_) shim().free(handle_);
}

int SentencePieceModel::piece_size() const { return shim().piece_size(handle_); }

int SentencePieceModel::piece_to_id(std::string_view piece) const {
  return shim().piece_to_id(handle_, piece.data(), piece.size());
}

bool SentencePieceModel::is_control(int id) const { return shim().is_control(handle_, id) != 0; }

std::string SentencePieceModel::id_to_piece(int id) const {
  size_t n = 0;
  const char* p = shim().id_to_piece(handle_, id, &n);
  return std::string(p, n);
}

std::vector<std::string> SentencePieceModel::encode(std::string_view text) const {
  std::vector<std::string> out;
  char err[512] = {0};
  auto emit = [](void* ctx, const char* piece, size_t size) {
    static_cast<std::vector<std::string>*>(ctx)->emplace_back(piece, size);
  };
  if (shim().encode(handle_, text.data(), text.size(), emit, &out, err, sizeof err) != 0)
    throw InputError(name_ + ": SentencePiece could not encode a text (" + one_line(err) + ")");
  return out;
}

}  // namespace omnibind::preprocess
