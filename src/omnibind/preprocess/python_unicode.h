// Character properties as the Python reference of the BERT and RoBERTa slow tokenizers sees them.
// ICU (72, Unicode 15.0) supplies the data; `python_category` hides every code point that is not
// assigned in Unicode 14.0 (CPython 3.11's unicodedata.unidata_version, the version the fixtures
// ran) so that BERT's clean-up removes exactly what unicodedata calls "Cn".
#pragma once
#include <cstdint>
#include <string>

namespace omnibind::preprocess {

// The two-letter general category, as Python's unicodedata.category (Unicode 14.0): "Lu", "Mn", "Cn", ...
const char* python_category(char32_t c);

// Python's `ch.lower()` for one code point on its own (full case mapping, no context, so U+03A3
// gives U+03C3 and U+0130 gives "i\u0307").
std::u32string python_char_lower(char32_t c);

// unicodedata.normalize("NFD", text).
std::u32string nfd(const std::u32string& text);

// The general category of `c` in ICU's own Unicode version (the `regex` module's \p{L} / \p{N}).
bool unicode_is_letter(char32_t c);  // \p{L}
bool unicode_is_number(char32_t c);  // \p{N}
// The `regex` module's \s: the White_Space property (U+0009-000D, U+0020, U+0085, U+00A0, U+1680,
// U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000). Unlike str.isspace, not U+001C-001F.
bool regex_is_space(char32_t c);

}  // namespace omnibind::preprocess
