#include "omnibind/preprocess/bert_tokenizer.h"

#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/added_token_split.h"
#include "omnibind/preprocess/clip_text_clean.h"
#include "omnibind/preprocess/python_unicode.h"

namespace omnibind::preprocess {
namespace {

// BertTokenizer's special tokens, sorted as unique_no_split_tokens holds them.
const char32_t* const kSpecials[] = {U"[CLS]", U"[MASK]", U"[PAD]", U"[SEP]", U"[UNK]"};

bool is_category(char32_t c, char first) { return python_category(c)[0] == first; }

// _is_control: category C* except \t \n \r (which count as whitespace).
bool is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return is_category(c, 'C');
}

// _is_whitespace: ' ', \t, \n, \r and category Zs.
bool is_bert_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  const char* cat = python_category(c);
  return cat[0] == 'Z' && cat[1] == 's';
}

// _is_punctuation: every ASCII non-alphanumeric printable character, and Unicode P*.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return c >= 0x80 && is_category(c, 'P');
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks it lists (not kana, not hangul,
// not Extension G and later).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string lower_each_char(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) out += python_char_lower(c);
  return out;
}

// str.split(): runs of Python whitespace separate words.
std::vector<std::u32string> split_python_whitespace(const std::u32string& s) {
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && python_isspace(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !python_isspace(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

bool is_special_string(const std::u32string& w) {
  for (const char32_t* s : kSpecials)
    if (w == s) return true;
  return false;
}

// BasicTokenizer.tokenize on text that BertTokenizer.tokenize already lowercased character by character.
std::vector<std::u32string> basic_tokenize(const std::u32string& text, bool lower_case) {
  // _clean_text, then _tokenize_chinese_chars.
  std::u32string clean;
  clean.reserve(text.size() + 8);
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_bert_whitespace(c)) {
      clean += U' ';
    } else if (is_cjk_ideograph(c)) {
      clean += U' ';
      clean += c;
      clean += U' ';
    } else {
      clean += c;
    }
  }
  std::u32string joined;  // " ".join(split_tokens)
  for (std::u32string word : split_python_whitespace(clean)) {
    if (!joined.empty()) joined += U' ';
    if (is_special_string(word)) {  // never_split = all_special_tokens
      joined += word;
      continue;
    }
    if (lower_case) {
      word = lower_each_char(word);  // token.lower(): a no-op on text lowered per character already
      std::u32string stripped;       // _run_strip_accents: NFD, drop Mn
      for (char32_t c : nfd(word)) {
        const char* cat = python_category(c);
        if (!(cat[0] == 'M' && cat[1] == 'n')) stripped += c;
      }
      word.swap(stripped);
    }
    // _run_split_on_punc: every punctuation character is a word of its own.
    bool new_word = true;
    for (char32_t c : word) {
      if (is_punctuation(c)) {
        joined += U' ';
        joined += c;
        joined += U' ';
        new_word = true;
      } else {
        if (new_word) joined += U' ';
        new_word = false;
        joined += c;
      }
    }
  }
  return split_python_whitespace(joined);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path + ": cannot open the BERT vocabulary file");
  std::ostringstream ss;
  ss << in.rdbuf();
  require(!in.bad(), path + ": cannot read the BERT vocabulary file");
  return ss.str();
}

}  // namespace

struct BertWordPieceTokenizer::Impl {
  Options options;
  std::unordered_map<std::string, int64_t> vocab;
  int64_t n_lines = 0;
  int64_t cls = 0, sep = 0, pad = 0, unk = 0, mask = 0;
  std::vector<LiteralToken> literals;  // BERT's special tokens are plain strings: they strip both sides

  // WordpieceTokenizer.tokenize of one word (already free of whitespace).
  void wordpiece(const std::u32string& word, std::vector<std::string>& out) const {
    if (static_cast<int64_t>(word.size()) > options.max_input_chars_per_word) {
      out.emplace_back("[UNK]");
      return;
    }
    std::vector<size_t> off(word.size() + 1, 0);  // byte offset of each code point in the UTF-8 form
    std::string utf8;
    for (size_t i = 0; i < word.size(); ++i) {
      off[i] = utf8.size();
      append_utf8(utf8, static_cast<uint32_t>(word[i]));
    }
    off[word.size()] = utf8.size();
    const size_t first_out = out.size();
    std::string piece;
    for (size_t start = 0; start < word.size();) {
      size_t end = word.size();
      bool found = false;
      for (; end > start; --end) {
        piece.assign(start > 0 ? "##" : "");
        piece.append(utf8, off[start], off[end] - off[start]);
        if (vocab.count(piece)) {
          found = true;
          break;
        }
      }
      if (!found) {  // no full segmentation: the whole word is one [UNK]
        out.resize(first_out);
        out.emplace_back("[UNK]");
        return;
      }
      out.push_back(piece);
      start = end;
    }
  }

  std::vector<std::string> tokenize(const std::string& text) const {
    const std::u32string t = decode_utf8_strict(text);
    std::vector<std::string> pieces;
    for (const TextSegment& seg : split_on_literal_tokens(t, literals)) {
      if (seg.special >= 0) {
        pieces.push_back(encode_utf8(seg.text));
        continue;
      }
      const std::u32string lowered = options.lower_case ? lower_each_char(seg.text) : seg.text;
      for (const std::u32string& word : basic_tokenize(lowered, options.lower_case)) wordpiece(word, pieces);
    }
    return pieces;
  }

  int64_t id_of(const std::string& piece) const {
    const auto it = vocab.find(piece);
    return it == vocab.end() ? unk : it->second;
  }
};

BertWordPieceTokenizer::BertWordPieceTokenizer(const std::string& vocab_path)
    : BertWordPieceTokenizer(vocab_path, Options{}) {}

BertWordPieceTokenizer::BertWordPieceTokenizer(const std::string& vocab_path, Options options)
    : impl_(std::make_unique<Impl>()) {
  require(options.max_input_chars_per_word > 0, "BERT tokenizer: max_input_chars_per_word must be positive");
  impl_->options = options;
  const std::string bytes = read_file(vocab_path);
  require(!bytes.empty(), vocab_path + ": empty file, expected a BERT vocab.txt (one WordPiece token per line)");
  try {
    (void)decode_utf8_strict(bytes);
  } catch (const InputError& e) {
    throw InputError(vocab_path + ": not a BERT vocab.txt: " + without_text_prefix(e.what()));
  }
  // open(..., encoding="utf-8").readlines() in universal-newline mode: \n, \r\n and \r end a line;
  // the token is the line without its end; a later duplicate line overrides the id of an earlier one.
  int64_t line = 0;
  for (size_t pos = 0; pos < bytes.size(); ++line) {
    size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string::npos) end = bytes.size();
    impl_->vocab.insert_or_assign(bytes.substr(pos, end - pos), line);
    pos = end;
    if (pos < bytes.size()) pos += (bytes[pos] == '\r' && pos + 1 < bytes.size() && bytes[pos + 1] == '\n') ? 2 : 1;
  }
  impl_->n_lines = line;
  const auto need = [&](const char* tok) {
    const auto it = impl_->vocab.find(tok);
    require(it != impl_->vocab.end(), vocab_path + ": not a BERT vocab.txt: no line '" + std::string(tok) +
                                          "' (expected one WordPiece token per line, like bert-base-uncased's)");
    return it->second;
  };
  impl_->pad = need("[PAD]");
  impl_->unk = need("[UNK]");
  impl_->cls = need("[CLS]");
  impl_->sep = need("[SEP]");
  impl_->mask = need("[MASK]");
  for (const char32_t* s : kSpecials) {
    impl_->literals.push_back({s, /*lstrip=*/true, /*rstrip=*/true});
  }
}

BertWordPieceTokenizer::~BertWordPieceTokenizer() = default;

std::vector<std::string> BertWordPieceTokenizer::tokenize(const std::string& text) const {
  return impl_->tokenize(text);
}

std::vector<int64_t> BertWordPieceTokenizer::encode(const std::string& text) const {
  const auto pieces = impl_->tokenize(text);
  std::vector<int64_t> ids;
  ids.reserve(pieces.size());
  for (const auto& p : pieces) ids.push_back(impl_->id_of(p));
  return ids;
}

TokenBatch BertWordPieceTokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                                                TextPadding padding) const {
  const auto rows = encode_text_rows(texts, [this](const std::string& t) { return encode(t); });
  return assemble_token_batch(rows, impl_->cls, impl_->sep, impl_->pad, max_length, padding);
}

int64_t BertWordPieceTokenizer::vocab_size() const { return impl_->n_lines; }
int64_t BertWordPieceTokenizer::cls_id() const { return impl_->cls; }
int64_t BertWordPieceTokenizer::sep_id() const { return impl_->sep; }
int64_t BertWordPieceTokenizer::pad_id() const { return impl_->pad; }
int64_t BertWordPieceTokenizer::unk_id() const { return impl_->unk; }
int64_t BertWordPieceTokenizer::mask_id() const { return impl_->mask; }

std::vector<std::string> bert_basic_tokenize(const std::string& text, bool lower_case) {
  const std::u32string t = decode_utf8_strict(text);
  std::vector<std::string> out;
  for (const auto& w : basic_tokenize(lower_case ? lower_each_char(t) : t, lower_case)) out.push_back(encode_utf8(w));
  return out;
}

}  // namespace omnibind::preprocess
