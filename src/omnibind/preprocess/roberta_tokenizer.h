// RoBERTa's byte-level BPE tokenizer (GPT-2's scheme) exactly as transformers 4.30's slow
// `RobertaTokenizer` encodes text for CLAP: literal special tokens (<s> </s> <pad> <unk> <mask>,
// <mask> swallowing the whitespace before it) split off first, GPT-2's pre-tokenising regex, UTF-8
// bytes mapped to printable stand-ins, BPE merges by rank, no lowercasing.
// Quirks: docs/reference/text_tokenizers.md. Construction reads vocab.json and merges.txt once;
// every method is const and safe from many threads.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/preprocess/text_token_batch.h"

namespace omnibind::preprocess {

class RobertaBpeTokenizer {
 public:
  // vocab_json: {"token": id, ...} with <s> <pad> </s> <unk> <mask>; merges_txt: a "#version" header
  // line, then one "first second" merge per line. InputError naming the file when either is
  // unreadable or malformed, or when a merge produces a symbol vocab.json lacks (files that do not
  // belong together).
  RobertaBpeTokenizer(const std::string& vocab_json, const std::string& merges_txt);
  ~RobertaBpeTokenizer();
  RobertaBpeTokenizer(const RobertaBpeTokenizer&) = delete;
  RobertaBpeTokenizer& operator=(const RobertaBpeTokenizer&) = delete;

  // The BPE symbols of one text as vocab.json spells them (e.g. {"A", "Ġdog", "<mask>"}), without the
  // <s>/</s> the encoder adds. InputError "text: invalid UTF-8 at byte N ..." when not UTF-8.
  std::vector<std::string> tokenize(const std::string& text) const;
  // Their ids (a symbol missing from vocab.json becomes <unk>); not truncated.
  std::vector<int64_t> encode(const std::string& text) const;

  // tokenizer(texts, padding=..., truncation=True, max_length=...): <s> + at most max_length-2 ids +
  // </s>, padded with <pad>. CLAP: max_length 77, kMaxLength. InputError "text K: ..." for a bad row.
  TokenBatch encode_batch(const std::vector<std::string>& texts, int64_t max_length = 77,
                          TextPadding padding = TextPadding::kMaxLength) const;

  int64_t vocab_size() const;  // entries in vocab.json (50265 for roberta-base)
  int64_t bos_id() const;      // <s> = cls (0)
  int64_t pad_id() const;      // <pad> (1) = RoBERTa's padding_idx
  int64_t eos_id() const;      // </s> = sep (2)
  int64_t unk_id() const;      // <unk> (3)
  int64_t mask_id() const;     // <mask> (50264)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GPT-2's pre-tokenisation: the pieces re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
// ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text) returns (Python `regex` semantics). InputError on bad UTF-8.
std::vector<std::string> gpt2_pretokenize(const std::string& text);

// RobertaEmbeddings' position ids: padding_idx + cumsum(ids != padding_idx) * (ids != padding_idx).
// Computed from the ids, not the attention mask, so a literal "<pad>" in the text gets padding_idx too.
at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx = 1);

}  // namespace omnibind::preprocess
