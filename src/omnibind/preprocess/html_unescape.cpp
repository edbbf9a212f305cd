#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "omnibind/preprocess/clip_text_clean.h"
#include "omnibind/preprocess/html_entities.h"

namespace omnibind::preprocess {
namespace {

struct Tables {
  std::unordered_map<std::string_view, const char*> named;
  std::unordered_map<uint32_t, const char*> invalid_refs;
  std::unordered_set<uint32_t> invalid_cps;
  Tables() {
    for (size_t i = 0; i < html_data::kNamedCount; ++i) named.emplace(html_data::kNamed[i].name, html_data::kNamed[i].value);
    for (size_t i = 0; i < html_data::kInvalidCharrefCount; ++i)
      invalid_refs.emplace(html_data::kInvalidCharrefs[i].code, html_data::kInvalidCharrefs[i].value);
    for (size_t i = 0; i < html_data::kInvalidCodepointCount; ++i) invalid_cps.insert(html_data::kInvalidCodepoints[i]);
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_dec(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// Mirrors the stdlib's pattern &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?).
// The {1,32} counts code points; names are ASCII so counting bytes only differs for non-ASCII
// runs, which never name an entity (they fall back to the literal text either way).
std::string html_unescape(const std::string& s) {
  if (s.find('&') == std::string::npos) return s;
  const Tables& t = tables();
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      const bool hex = j + 1 < s.size() && (s[j + 1] == 'x' || s[j + 1] == 'X');
      size_t k = j + (hex ? 2 : 1);
      const size_t digits_begin = k;
      uint64_t num = 0;
      bool huge = false;
      while (k < s.size() && (hex ? is_hex(s[k]) : is_dec(s[k]))) {
        const char c = s[k];
        const uint64_t d = is_dec(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        num = num * (hex ? 16 : 10) + d;
        if (num > 0x10FFFFull) huge = true, num = 0x110000;
        ++k;
      }
      if (k == digits_begin) {  // "&#" or "&#x" without digits: left as is
        out += '&';
        i = j;
        continue;
      }
      if (k < s.size() && s[k] == ';') ++k;
      const uint32_t cp = static_cast<uint32_t>(num);
      if (auto it = t.invalid_refs.find(cp); !huge && it != t.invalid_refs.end()) {
        out += it->second;
      } else if (huge || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        out += "\xEF\xBF\xBD";
      } else if (!t.invalid_cps.count(cp)) {
        append_utf8(out, cp);
      }
      i = k;
      continue;
    }
    // Named: up to 32 chars not in "\t\n\f <&#;", then an optional ';'.
    size_t k = j;
    while (k < s.size() && k - j < 32 && std::string_view("\t\n\f <&#;").find(s[k]) == std::string_view::npos) ++k;
    if (k == j) {
      out += '&';
      i = j;
      continue;
    }
    if (k < s.size() && s[k] == ';') ++k;
    const std::string_view name(s.data() + j, k - j);
    if (auto it = t.named.find(name); it != t.named.end()) {
      out += it->second;
    } else {
      // Longest prefix (at least 2 chars) that is an entity, rest kept literally.
      bool found = false;
      for (size_t x = name.size() - 1; x > 1; --x) {
        if (auto p = t.named.find(name.substr(0, x)); p != t.named.end()) {
          out += p->second;
          out.append(name.substr(x));
          found = true;
          break;
        }
      }
      if (!found) {
        out += '&';
        out.append(name);
      }
    }
    i = k;
  }
  return out;
}

}  // namespace omnibind::preprocess
