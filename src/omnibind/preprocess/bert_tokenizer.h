// BERT's WordPiece tokenizer exactly as transformers 4.30's slow `BertTokenizer` (bert-base-uncased,
// do_lower_case=True) encodes text: literal special tokens ([CLS] [SEP] [PAD] [MASK] [UNK]) split
// off first, Python per-character lowercasing, BasicTokenizer (clean-up, CJK ideographs, accent
// stripping, punctuation split) and greedy longest-match WordPiece. Quirks: docs/reference/text_tokenizers.md.
// Construction reads vocab.txt once; every method is const and safe from many threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "omnibind/preprocess/text_token_batch.h"

namespace omnibind::preprocess {

class BertWordPieceTokenizer {
 public:
  struct Options {
    bool lower_case = true;                  // do_lower_case (also strips accents, as strip_accents=None does)
    int64_t max_input_chars_per_word = 100;  // longer words become [UNK]
  };

  // vocab_path: vocab.txt, one token per line, id = line number (0-based). InputError naming the
  // file when it is unreadable, not UTF-8, or lacks one of [PAD] [UNK] [CLS] [SEP] [MASK].
  explicit BertWordPieceTokenizer(const std::string& vocab_path);
  BertWordPieceTokenizer(const std::string& vocab_path, Options options);
  ~BertWordPieceTokenizer();
  BertWordPieceTokenizer(const BertWordPieceTokenizer&) = delete;
  BertWordPieceTokenizer& operator=(const BertWordPieceTokenizer&) = delete;

  // The WordPiece strings of one text (e.g. {"cafe", "##s", "[UNK]", "[SEP]"}), without the [CLS]/[SEP]
  // the encoder adds. InputError "text: invalid UTF-8 at byte N ..." when the text is not UTF-8.
  std::vector<std::string> tokenize(const std::string& text) const;
  // Their ids (not truncated).
  std::vector<int64_t> encode(const std::string& text) const;

  // tokenizer(texts, padding=..., truncation=True, max_length=...): [CLS] + at most max_length-2 ids
  // + [SEP], padded with [PAD] (0). WavCaps: max_length 30, kLongest, batches of 8 texts.
  // InputError "text K: ..." naming the row of a text that is not UTF-8.
  TokenBatch encode_batch(const std::vector<std::string>& texts, int64_t max_length = 30,
                          TextPadding padding = TextPadding::kLongest) const;

  int64_t vocab_size() const;  // lines in vocab.txt
  int64_t cls_id() const;
  int64_t sep_id() const;
  int64_t pad_id() const;
  int64_t unk_id() const;
  int64_t mask_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// BasicTokenizer.tokenize of one text (no literal special-token handling, no WordPiece): the words
// WordPiece then splits. Exposed for tests.
std::vector<std::string> bert_basic_tokenize(const std::string& text, bool lower_case = true);

}  // namespace omnibind::preprocess
