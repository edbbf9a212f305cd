#include "omnibind/common/printable.h"

#include <gtest/gtest.h>

using omnibind::printable_message;

TEST(PrintableMessage, KeepsPrintableAsciiAndValidUtf8) {
  EXPECT_EQ(printable_message("plain: shape [1, 2]"), "plain: shape [1, 2]");
  EXPECT_EQ(printable_message("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x94\x8A"), "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x94\x8A");
}

TEST(PrintableMessage, EscapesControlsAndInvalidBytes) {
  EXPECT_EQ(printable_message(std::string("a\nb\tc\0d", 7)), "a\\x0Ab\\x09c\\x00d");
  EXPECT_EQ(printable_message("\x7F"), "\\x7F");
  EXPECT_EQ(printable_message("bad \xFF\xFE lead"), "bad \\xFF\\xFE lead");
  EXPECT_EQ(printable_message("cut \xE6\x97"), "cut \\xE6\\x97");         // truncated sequence
  EXPECT_EQ(printable_message("over \xC0\xAF"), "over \\xC0\\xAF");       // overlong '/'
  EXPECT_EQ(printable_message("sur \xED\xA0\x80"), "sur \\xED\\xA0\\x80");  // UTF-16 surrogate
}

