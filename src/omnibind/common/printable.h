// Error text made safe to print: messages may quote bytes read from a user's file (a PCD header
// line, a .npy descr), and those must never reach a terminal or a JSON reply raw.
#pragma once
#include <string>

namespace omnibind {

// `text` as one printable line: valid UTF-8 is kept, control characters (newlines included), DEL and
// bytes that are not valid UTF-8 become \xNN escapes.
std::string printable_message(const std::string& text);

}  // namespace omnibind
