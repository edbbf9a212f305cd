// SigLIP's text tokenizer as OmniBind runs it: transformers 4.37.2 `SiglipTokenizer` (slow,
// SentencePiece) loaded from the released tokenizer_config.json, called by SiglipProcessor with
// padding='max_length' (docs/reference/siglip.md has every step and its source):
//   "\u2581" + text (literal U+2581 -> ' '); lower-case code point by code point (Python str.lower
//   of each character, so no final-sigma rule); split on the special tokens "</s>" / "<unk>"
//   (whitespace next to them removed); every other piece: ASCII punctuation removed, whitespace runs
//   -> ' ', stripped, SentencePiece (add_dummy_prefix forced off) on "<unk>" + piece with the
//   "<unk>" pieces dropped; a lone leading "\u2581" before a special token dropped; "</s>" appended
//   unless already last; right-padded with "</s>" (pad id = eos id) to the context length (64).
// Texts longer than the context are an InputError (the reference cannot embed them either).
// Construction loads the model once; everything else is const and safe from many threads.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace omnibind::preprocess {

class SiglipTokenizer {
 public:
  // spiece_path: a SentencePiece model (the released spiece.model). InputError naming the file when
  // it is unreadable, not a SentencePiece model, or has no "</s>" piece.
  explicit SiglipTokenizer(const std::string& spiece_path);
  ~SiglipTokenizer();
  SiglipTokenizer(const SiglipTokenizer&) = delete;
  SiglipTokenizer& operator=(const SiglipTokenizer&) = delete;

  int64_t eos_id() const;   // id of "</s>" (also the pad id)
  int64_t unk_id() const;   // id of "<unk>"
  int64_t vocab_size() const;

  // The pieces of one text before ids and "</s>" (special tokens appear as "</s>" / "<unk>").
  // InputError on invalid UTF-8.
  std::vector<std::string> pieces(const std::string& text) const;

  // The ids of one text with the final "</s>", neither truncated nor padded (what the reference's
  // tokenizer returns before padding; may be longer than any context).
  std::vector<int64_t> encode(const std::string& text) const;

  // encode() cut the way transformers' truncation=True would: the first `context - 1` ids before
  // the final "</s>" + "</s>". Not what OmniBind does (it cannot embed such texts); for tests and
  // callers that ask for it explicitly.
  std::vector<int64_t> encode_truncated(const std::string& text, int64_t context = 64) const;

  // [texts.size(), context] int64: encode() right-padded with eos_id(). InputError naming the text
  // when it has more than `context` ids.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = 64) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace omnibind::preprocess
