// Internal helpers shared by the text point-cloud / mesh readers: line and token scanning and
// exact number parsing (std::from_chars: correctly rounded, locale-free).
#pragma once
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "omnibind/common/error.h"

namespace omnibind::media::detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Walks a text buffer line by line and token by token.
class TextScanner {
 public:
  explicit TextScanner(std::string_view text) : text_(text) {}
  bool at_end() const { return pos_ >= text_.size(); }
  size_t pos() const { return pos_; }
  size_t remaining() const { return text_.size() - pos_; }
  int64_t line_number() const { return line_; }

  // Next line without its terminator ("\n" or "\r\n"); false at end of buffer.
  bool next_line(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = end < text_.size() ? end + 1 : end;
    ++line_;
    return true;
  }

  // Next whitespace-separated token across lines; false at end of buffer.
  bool next_token(std::string_view& tok) {
    while (pos_ < text_.size() && is_space(text_[pos_])) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ >= text_.size()) return false;
    size_t start = pos_;
    while (pos_ < text_.size() && !is_space(text_[pos_])) ++pos_;
    tok = text_.substr(start, pos_ - start);
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 0;
};

// Splits a line into whitespace-separated tokens, one at a time.
inline bool next_word(std::string_view& line, std::string_view& word) {
  size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  if (i >= line.size()) { line = {}; return false; }
  size_t j = i;
  while (j < line.size() && !is_space(line[j])) ++j;
  word = line.substr(i, j - i);
  line.remove_prefix(j);
  return true;
}

template <typename T>
inline bool parse_number(std::string_view tok, T& out) {
  if (!tok.empty() && tok.front() == '+') tok.remove_prefix(1);
  if (tok.empty()) return false;
  auto res = std::from_chars(tok.data(), tok.data() + tok.size(), out);
  return res.ec == std::errc() && res.ptr == tok.data() + tok.size();
}

template <typename T>
inline T parse_or_throw(std::string_view tok, const std::string& name, const char* what) {
  T v{};
  if (!parse_number(tok, v))
    throw InputError(name + ": cannot parse " + what + " '" + std::string(tok.substr(0, 40)) + "'");
  return v;
}

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

inline std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return r;
}

// Refuses element counts the file cannot possibly hold (guards allocations against a tiny file
// that claims billions of vertices).
inline void check_count_fits(int64_t count, int64_t min_bytes_each, size_t available, const std::string& name,
                             const char* what) {
  if (count < 0) throw InputError(name + ": negative " + std::string(what) + " count " + std::to_string(count));
  if (min_bytes_each > 0 && count > static_cast<int64_t>(available / static_cast<size_t>(min_bytes_each)))
    throw InputError(name + ": header declares " + std::to_string(count) + " " + what + " but the file has only " +
                     std::to_string(available) + " bytes of data");
}

}  // namespace omnibind::media::detail
