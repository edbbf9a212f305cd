// A SentencePiece model (libsentencepiece, reached through the omnibind_sentencepiece module: see
// src/sentencepiece_shim/sentencepiece_shim.h for why it is loaded at run time). Const methods are
// safe from many threads.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace omnibind::preprocess {

class SentencePieceModel {
 public:
  // A serialized ModelProto. InputError "<name>: not a SentencePiece model (<why>)" when it does not load.
  SentencePieceModel(std::string_view serialized, const std::string& name);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int piece_size() const;
  int piece_to_id(std::string_view piece) const;  // unknown pieces -> the unk id
  bool is_control(int id) const;
  std::string id_to_piece(int id) const;
  std::vector<std::string> encode(std::string_view text) const;  // InputError when SentencePiece fails

 private:
  void* handle_ = nullptr;
  std::string name_;
};

}  // namespace omnibind::preprocess
