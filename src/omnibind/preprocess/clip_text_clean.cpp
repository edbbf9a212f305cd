#include "omnibind/preprocess/clip_text_clean.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/ftfy_fix_encoding.h"
#include "omnibind/preprocess/html_entities.h"

namespace omnibind::preprocess {
namespace {

std::u16string to_utf16(const std::u32string& s) {
  std::u16string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x10000) {
      out += static_cast<char16_t>(c);
    } else {
      c -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (c >> 10));
      out += static_cast<char16_t>(0xDC00 + (c & 0x3FF));
    }
  }
  return out;
}

std::u32string from_utf16(const char16_t* s, int32_t n) {
  std::u32string out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] < 0xE000) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    out += c;
  }
  return out;
}

std::u32string nfc(const std::u32string& s) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFCInstance(&err);
  const std::u16string in = to_utf16(s);
  std::vector<UChar> out(in.size() * 3 + 16);
  err = U_ZERO_ERROR;
  int32_t len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
                                 out.data(), static_cast<int32_t>(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.resize(len);
    err = U_ZERO_ERROR;
    len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), out.data(),
                           len, &err);
  }
  if (U_FAILURE(err)) return s;
  return from_utf16(reinterpret_cast<const char16_t*>(out.data()), len);
}

std::u32string strip(const std::u32string& s) {
  size_t a = 0, b = s.size();
  while (a < b && python_isspace(s[a])) ++a;
  while (b > a && python_isspace(s[b - 1])) --b;
  return s.substr(a, b - a);
}

}  // namespace

bool python_isspace(char32_t c) {
  // Python str.isspace: White_Space plus the information separators U+001C..U+001F.
  return (c >= 0x1C && c <= 0x1F) || u_isUWhiteSpace(static_cast<UChar32>(c));
}

std::u32string decode_utf8_strict(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const auto bad = [&](size_t at) {
    throw InputError("text: invalid UTF-8 at byte " + std::to_string(at) + ", expected UTF-8 encoded text");
  };
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len;
    char32_t cp, min;
    if (b0 < 0x80) { out += b0; ++i; continue; }
    if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
    else bad(i);
    if (i + len > s.size()) bad(i);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) bad(i);
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) bad(i);
    out += cp;
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_utf8(out, static_cast<uint32_t>(cp));
  return out;
}

// ftfy 6 fix_text's character-level fixes: line breaks, C1 controls as Windows-1252, control
// characters, Latin ligatures, full/half-width forms, curly quotes, NFC.
namespace {
std::u32string ftfy_fix_characters(const std::u32string& in) {
  static const char32_t kCp1252[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                       0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                       0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                       0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  std::u32string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    // fix_line_breaks
    if (c == U'\r') {
      if (i + 1 < in.size() && in[i + 1] == U'\n') ++i;
      out += U'\n';
      continue;
    }
    if (c == 0x2028 || c == 0x2029 || c == 0x85) { out += U'\n'; continue; }
    // fix_c1_controls: C1 characters read as Windows-1252
    if (c >= 0x80 && c <= 0x9F) c = kCp1252[c - 0x80];
    // remove_control_chars (keeps \t \n \f)
    if ((c < 0x20 && c != U'\t' && c != U'\n' && c != U'\f') || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
        c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) || (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE007F))
      continue;
    // fix_latin_ligatures
    switch (c) {
      case 0xFB00: out += U"ff"; continue;
      case 0xFB01: out += U"fi"; continue;
      case 0xFB02: out += U"fl"; continue;
      case 0xFB03: out += U"ffi"; continue;
      case 0xFB04: out += U"ffl"; continue;
      case 0xFB05: case 0xFB06: out += U"st"; continue;
      case 0x0132: out += U"IJ"; continue;
      case 0x0133: out += U"ij"; continue;
      case 0x0149: out += U"\u02BCn"; continue;
      case 0x01C7: out += U"LJ"; continue;
      case 0x01C8: out += U"Lj"; continue;
      case 0x01C9: out += U"lj"; continue;
      case 0x01CA: out += U"NJ"; continue;
      case 0x01CB: out += U"Nj"; continue;
      case 0x01CC: out += U"nj"; continue;
      case 0x01F1: out += U"DZ"; continue;
      case 0x01F2: out += U"Dz"; continue;
      case 0x01F3: out += U"dz"; continue;
      default: break;
    }
    // fix_character_width: full-width ASCII and the ideographic space
    if (c >= 0xFF01 && c <= 0xFF5E) c = c - 0xFF01 + 0x21;
    else if (c == 0x3000) c = U' ';
    // uncurl_quotes
    if (c == 0x2018 || c == 0x2019 || c == 0x201A || c == 0x201B) c = U'\'';
    else if (c == 0x201C || c == 0x201D || c == 0x201E || c == 0x201F) c = U'"';
    out += c;
  }
  return nfc(out);
}
}  // namespace

// ftfy.fix_text: per line (segments end after '\n'), mojibake repair (ftfy_fix_encoding.h) then the
// character-level fixes, repeated until the segment stops changing. (ftfy's own 'auto' HTML
// unescape is not done; the tokenizer's two html.unescape calls follow. See the docs.)
std::u32string ftfy_fix_text_subset(const std::u32string& in) {
  std::u32string out;
  out.reserve(in.size());
  for (size_t pos = 0; pos < in.size();) {
    size_t end = in.find(U'\n', pos);
    end = end == std::u32string::npos ? in.size() : end + 1;
    std::u32string seg = in.substr(pos, end - pos);
    for (int guard = 0; guard < 16; ++guard) {
      std::u32string next = ftfy_fix_characters(ftfy_fix_encoding(seg));
      if (next == seg) break;
      seg = std::move(next);
    }
    out += seg;
    pos = end;
  }
  return out;
}

std::u32string python_lower(const std::u32string& text) {
  // ICU's root-locale full lowercasing = Python's str.lower() (SpecialCasing incl. Final_Sigma).
  const std::u16string in = to_utf16(text);
  std::vector<UChar> out(in.size() * 3 + 16);
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = u_strToLower(out.data(), static_cast<int32_t>(out.size()), reinterpret_cast<const UChar*>(in.data()),
                             static_cast<int32_t>(in.size()), "", &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.resize(len);
    err = U_ZERO_ERROR;
    len = u_strToLower(out.data(), len, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), "",
                       &err);
  }
  if (U_FAILURE(err)) throw InputError("text: Unicode lowercasing failed");
  return from_utf16(reinterpret_cast<const char16_t*>(out.data()), len);
}

std::string clip_clean_text(const std::string& utf8) {
  // basic_clean: ftfy.fix_text, html.unescape(html.unescape(.)), strip
  std::u32string t = ftfy_fix_text_subset(decode_utf8_strict(utf8));
  t = strip(decode_utf8_strict(html_unescape(html_unescape(encode_utf8(t)))));
  // whitespace_clean: \s+ -> ' ', strip; then str.lower()
  std::u32string w;
  w.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (python_isspace(t[i])) {
      while (i < t.size() && python_isspace(t[i])) ++i;
      w += U' ';
    } else {
      w += t[i++];
    }
  }
  return encode_utf8(python_lower(strip(w)));
}

}  // namespace omnibind::preprocess
