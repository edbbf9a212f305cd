// A C interface to Debian's libsentencepiece, built as its own loadable module (omnibind_sentencepiece.so).
//
// Why a module: Debian's libsentencepiece.so.0 bundles its own protobuf-lite (3.14) and exports every
// symbol of it. Linked into a program that also loads libtorch's libprotobuf.so.32, one library's
// calls land in the other's protobuf: the process crashes while libprotobuf initialises. So nothing
// in the program links libsentencepiece; preprocess/sentencepiece_model.cpp dlopen()s this module
// with RTLD_LOCAL | RTLD_DEEPBIND, which keeps libsentencepiece (and its protobuf) out of the global
// symbol scope and makes it resolve its own symbols first. Only C types cross the boundary.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*omnibind_spm_emit_fn)(void* ctx, const char* piece, size_t size);

// A processor loaded from a serialized ModelProto, or NULL with the reason in err (NUL-terminated).
void* omnibind_spm_load(const char* bytes, size_t size, char* err, size_t err_size);
void omnibind_spm_free(void* spm);
int omnibind_spm_piece_size(const void* spm);
int omnibind_spm_piece_to_id(const void* spm, const char* piece, size_t size);  // unknown -> unk id
int omnibind_spm_is_control(const void* spm, int id);
// The piece of id, valid while spm lives.
const char* omnibind_spm_id_to_piece(const void* spm, int id, size_t* size);
// Encodes text into pieces, calling emit once per piece in order. 0 on success, else -1 with err.
int omnibind_spm_encode(const void* spm, const char* text, size_t size, omnibind_spm_emit_fn emit, void* ctx,
                        char* err, size_t err_size);

#ifdef __cplusplus
}
#endif
