// The C interface of sentencepiece_shim.h over sentencepiece::SentencePieceProcessor. Never throws.
#include "sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {
void set_error(char* err, size_t err_size, const std::string& msg) {
  if (!err || err_size == 0) return;
  const size_t n = msg.size() < err_size - 1 ? msg.size() : err_size - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}
const sentencepiece::SentencePieceProcessor* sp(const void* p) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(p);
}
}  // namespace

extern "C" {

void* omnibind_spm_load(const char* bytes, size_t size, char* err, size_t err_size) {
  try {
    auto* p = new sentencepiece::SentencePieceProcessor();
    const auto status = p->LoadFromSerializedProto(std::string_view(bytes, size));
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      delete p;
      return nullptr;
    }
    return p;
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
  } catch (...) {
    set_error(err, err_size, "unknown error");
  }
  return nullptr;
}

void omnibind_spm_free(void* p) { delete static_cast<sentencepiece::SentencePieceProcessor*>(p); }

int omnibind_spm_piece_size(const void* p) { return sp(p)->GetPieceSize(); }

int omnibind_spm_piece_to_id(const void* p, const char* piece, size_t size) {
  return sp(p)->PieceToId(std::string_view(piece, size));
}

int omnibind_spm_is_control(const void* p, int id) { return sp(p)->IsControl(id) ? 1 : 0; }

const char* omnibind_spm_id_to_piece(const void* p, int id, size_t* size) {
  const std::string& s = sp(p)->IdToPiece(id);
  if (size) *size = s.size();
  return s.c_str();
}

int omnibind_spm_encode(const void* p, const char* text, size_t size, omnibind_spm_emit_fn emit, void* ctx, char* err,
                        size_t err_size) {
  try {
    std::vector<std::string> pieces;
    const auto status = sp(p)->Encode(std::string_view(text, size), &pieces);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return -1;
    }
    for (const auto& s : pieces) emit(ctx, s.data(), s.size());
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
  } catch (...) {
    set_error(err, err_size, "unknown error");
  }
  return -1;
}

}  // extern "C"
