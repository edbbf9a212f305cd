// CLIP's byte-level BPE tokenizer (as ImageBind's SimpleTokenizer): text cleaning, the Unicode
// split regex (PCRE2), byte->unicode mapping, BPE with the merges of bpe_simple_vocab_16e6.txt.gz.
// Construction loads the merges once; encode()/tokenize() are const and safe from many threads.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace omnibind::preprocess {

class ClipTokenizer {
 public:
  static constexpr int64_t kSot = 49406;  // <|startoftext|> / <start_of_text>
  static constexpr int64_t kEot = 49407;  // <|endoftext|> / <end_of_text>

  // How the two special tokens are spelled. Either way a literal spelling inside a text (any case)
  // becomes the special id; the other family's spelling is ordinary text.
  enum class Specials {
    OpenAI,    // <|startoftext|> <|endoftext|>  (OpenAI CLIP, ImageBind)
    OpenClip,  // <start_of_text> <end_of_text>  (open_clip SimpleTokenizer, EVA-CLIP)
  };

  // bpe_path: the gzipped merges file. InputError naming it when unreadable or malformed.
  explicit ClipTokenizer(const std::string& bpe_path, Specials specials = Specials::OpenAI);
  ~ClipTokenizer();
  ClipTokenizer(const ClipTokenizer&) = delete;
  ClipTokenizer& operator=(const ClipTokenizer&) = delete;

  // BPE token ids of one text, without SOT/EOT. InputError on invalid UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;

  // [texts.size(), context] int64. Row = [SOT] + tokens cut to context-1 entries, then EOT, then
  // zeros (ImageBind at 53680b0: long texts keep EOT at index context-1).
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = 77) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace omnibind::preprocess
