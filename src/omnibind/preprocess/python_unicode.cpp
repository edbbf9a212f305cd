#include "omnibind/preprocess/python_unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/uversion.h>

#include <stdexcept>
#include <vector>

namespace omnibind::preprocess {
namespace {

// Indexed by UCharCategory.
constexpr const char* kCategoryNames[U_CHAR_CATEGORY_COUNT] = {
    "Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Me", "Mc", "Nd", "Nl", "No", "Zs", "Zl", "Zp",
    "Cc", "Cf", "Co", "Cs", "Pd", "Ps", "Pe", "Pc", "Po", "Sm", "Sc", "Sk", "So", "Pi", "Pf"};

constexpr uint8_t kPythonUnicodeMajor = 14;  // CPython 3.11 unicodedata.unidata_version "14.0.0"

void append_utf16(std::u16string& out, char32_t c) {
  if (c < 0x10000) {
    out += static_cast<char16_t>(c);
  } else {
    c -= 0x10000;
    out += static_cast<char16_t>(0xD800 + (c >> 10));
    out += static_cast<char16_t>(0xDC00 + (c & 0x3FF));
  }
}

std::u32string from_utf16(const UChar* s, int32_t n) {
  std::u32string out;
  out.reserve(static_cast<size_t>(n));
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

}  // namespace

const char* python_category(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  if (c > 0x7F) {
    UVersionInfo age;
    u_charAge(cp, age);
    if (age[0] > kPythonUnicodeMajor) return "Cn";  // assigned after Python's Unicode version
  }
  const int8_t t = u_charType(cp);
  return t >= 0 && t < U_CHAR_CATEGORY_COUNT ? kCategoryNames[t] : "Cn";
}

std::u32string python_char_lower(char32_t c) {
  if (c < 0x80) return std::u32string(1, (c >= 'A' && c <= 'Z') ? c + 32 : c);
  if (c == 0x130) return U"i\u0307";  // the one unconditional multi-character lowercase mapping
  return std::u32string(1, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
}

std::u32string nfd(const std::u32string& text) {
  bool ascii = true;
  for (char32_t c : text) ascii = ascii && c < 0x80;
  if (ascii) return text;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFDInstance(&err);
  if (U_FAILURE(err)) throw std::runtime_error("ICU: NFD normaliser unavailable");
  std::u16string in;
  in.reserve(text.size() + 4);
  for (char32_t c : text) append_utf16(in, c);
  std::vector<UChar> out(in.size() * 4 + 16);
  int32_t len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
                                 out.data(), static_cast<int32_t>(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.resize(static_cast<size_t>(len));
    err = U_ZERO_ERROR;
    len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), out.data(),
                           len, &err);
  }
  if (U_FAILURE(err)) throw std::runtime_error("ICU: NFD normalisation failed");
  return from_utf16(out.data(), len);
}

bool unicode_is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}

bool unicode_is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool regex_is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE) != 0;
}

}  // namespace omnibind::preprocess
