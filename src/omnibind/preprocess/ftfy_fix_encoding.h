// ftfy 6.2's mojibake repair (`fix_encoding`), the part of ftfy.fix_text that CLIP-family
// tokenizers run before BPE and that clip_text_clean's character-level subset lacked: text that
// was UTF-8 decoded as a single-byte code page ("doesnÃ¢â‚¬â„¢t" -> "doesn’t").
//
// Same decisions as ftfy (rspeer/python-ftfy v6.2.0): nothing happens to ASCII text or to text
// its badness heuristic does not flag; otherwise the whole text is re-encoded in the first of
// latin-1, sloppy-windows-1252/1251/1250/1253/1254, iso-8859-2, macroman, cp437 that can hold it
// (restoring 0xA0 bytes that became spaces, decoding lossy sequences as U+FFFD) and decoded as
// UTF-8 (or its CESU-8 / Java-null variants); failing that, embedded UTF-8-looking runs are fixed
// one by one (decode_inconsistent_utf8), then Latin-1 C1 controls are read as Windows-1252.
// Repeated until the text stops changing. See docs/reference/eva_clip.md.
#pragma once
#include <string>

namespace omnibind::preprocess {

// ftfy.fix_encoding(text) (one segment; ftfy.fix_text applies it per line).
std::u32string ftfy_fix_encoding(const std::u32string& text);

// ftfy.badness.is_bad: whether the text contains a character sequence typical of mojibake.
bool ftfy_is_bad(const std::u32string& text);

}  // namespace omnibind::preprocess
