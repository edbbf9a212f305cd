// The text clean-up CLIP's tokenizer does before splitting: ftfy.fix_text (a documented subset,
// see docs/reference/imagebind_preprocessing.md), html.unescape twice, whitespace collapsed and
// stripped (Python str semantics), then full Unicode lowercasing (Python str.lower()).
#pragma once
#include <cstdint>
#include <string>

namespace omnibind::preprocess {

// InputError when `utf8` is not valid UTF-8.
std::string clip_clean_text(const std::string& utf8);

// The parts, exposed for tests.
std::u32string decode_utf8_strict(const std::string& utf8);  // InputError on invalid UTF-8
std::string encode_utf8(const std::u32string& text);
// Appends one code point as UTF-8 (the single encoder both the cleaner and html_unescape use).
void append_utf8(std::string& out, uint32_t cp);
std::u32string ftfy_fix_text_subset(const std::u32string& text);
std::u32string python_lower(const std::u32string& text);
bool python_isspace(char32_t c);

}  // namespace omnibind::preprocess
