// Splitting a text on special tokens written literally in it, as transformers 4.30's slow
// tokenizers do before their model-specific tokenisation (PreTrainedTokenizer.tokenize with the
// `tokens_trie` of `unique_no_split_tokens`).
#pragma once
#include <string>
#include <vector>

namespace omnibind::preprocess {

struct LiteralToken {
  std::u32string text;  // e.g. U"<mask>"
  bool lstrip = false;  // swallows the whitespace before it (RoBERTa's <mask>)
  bool rstrip = false;  // swallows the whitespace after it
};

struct TextSegment {
  std::u32string text;
  int special = -1;  // index into the token list, or -1 for ordinary text
};

// Leftmost match first, the longest among matches starting at the same place (the trie's result
// for token sets in which no token contains another). Neighbours of a token with lstrip/rstrip
// lose their trailing/leading Python whitespace (str.rstrip/lstrip); segments left empty are dropped.
std::vector<TextSegment> split_on_literal_tokens(const std::u32string& text, const std::vector<LiteralToken>& tokens);

}  // namespace omnibind::preprocess
