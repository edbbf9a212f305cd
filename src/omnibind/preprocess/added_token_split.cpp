#include "omnibind/preprocess/added_token_split.h"

#include "omnibind/preprocess/clip_text_clean.h"

namespace omnibind::preprocess {

std::vector<TextSegment> split_on_literal_tokens(const std::u32string& text, const std::vector<LiteralToken>& tokens) {
  std::vector<TextSegment> parts;
  size_t plain_start = 0;
  for (size_t i = 0; i < text.size();) {
    int best = -1;
    size_t best_len = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const std::u32string& tok = tokens[t].text;
      if (tok.size() > best_len && text.compare(i, tok.size(), tok) == 0) {
        best = static_cast<int>(t);
        best_len = tok.size();
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    if (i > plain_start) parts.push_back({text.substr(plain_start, i - plain_start), -1});
    parts.push_back({tokens[static_cast<size_t>(best)].text, best});
    i += best_len;
    plain_start = i;
  }
  if (plain_start < text.size()) parts.push_back({text.substr(plain_start), -1});

  // Whitespace swallowing, in order, as the reference loop does (it edits the neighbours in place).
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].special < 0) continue;
    const LiteralToken& tok = tokens[static_cast<size_t>(parts[i].special)];
    if (tok.rstrip && i + 1 < parts.size()) {
      std::u32string& right = parts[i + 1].text;
      size_t a = 0;
      while (a < right.size() && python_isspace(right[a])) ++a;
      right.erase(0, a);
    }
    if (tok.lstrip && i > 0) {
      std::u32string& left = parts[i - 1].text;
      size_t b = left.size();
      while (b > 0 && python_isspace(left[b - 1])) --b;
      left.resize(b);
    }
  }
  std::vector<TextSegment> out;
  out.reserve(parts.size());
  for (auto& p : parts)
    if (!p.text.empty()) out.push_back(std::move(p));
  return out;
}

}  // namespace omnibind::preprocess
