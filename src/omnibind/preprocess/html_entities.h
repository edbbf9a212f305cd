// Python's html.unescape for UTF-8 strings: numeric references (with the HTML5 fix-ups for
// invalid ones), named references with and without ';' (longest-prefix rule for the legacy ones).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace omnibind::preprocess {

std::string html_unescape(const std::string& utf8);

namespace html_data {
struct NamedEntity { const char* name; const char* value; };   // name includes ';' when required
struct InvalidCharref { uint32_t code; const char* value; };
extern const NamedEntity kNamed[];
extern const size_t kNamedCount;
extern const InvalidCharref kInvalidCharrefs[];
extern const size_t kInvalidCharrefCount;
extern const uint32_t kInvalidCodepoints[];
extern const size_t kInvalidCodepointCount;
}  // namespace html_data

}  // namespace omnibind::preprocess
