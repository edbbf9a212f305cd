// CLIP BPE tokenizer parity: token ids of every fixture text (inputs.json, in order) must equal
// load_and_transform_text's output exactly, including truncation (EOT kept at index 76).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "fixture_util.h"
#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_text_clean.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/preprocess/html_entities.h"

namespace omnibind::preprocess {
namespace {

std::vector<std::string> fixture_texts() {
  std::ifstream in(testfix::ib_path("inputs.json"));
  const auto j = nlohmann::json::parse(in);
  std::vector<std::string> texts;
  for (const auto& t : j.at("texts")) texts.push_back(t.at("text").get<std::string>());
  return texts;
}

TEST(ClipTokenizer, TokenIdsMatchReferenceForEveryFixtureText) {
  OMNIBIND_REQUIRE_SHARED();
  const ClipTokenizer tok(testfix::ib_path("bpe_simple_vocab_16e6.txt.gz"));
  const auto texts = fixture_texts();
  const at::Tensor got = tok.tokenize(texts);
  const at::Tensor want = testfix::expected("expected_text.safetensors", "text/token_ids");
  ASSERT_EQ(got.sizes(), want.sizes());
  for (int64_t r = 0; r < want.size(0); ++r)
    EXPECT_TRUE(at::equal(got[r], want[r])) << "row " << r << ": " << texts[r] << "\n got  " << got[r] << "\n want " << want[r];
  const at::Tensor eot = testfix::expected("expected_text.safetensors", "text/eot_index");
  EXPECT_TRUE(at::equal(got.argmax(-1), eot));
}

TEST(ClipTokenizer, ThreadsShareOneTokenizer) {
  OMNIBIND_REQUIRE_SHARED();
  const ClipTokenizer tok(testfix::ib_path("bpe_simple_vocab_16e6.txt.gz"));
  const auto texts = fixture_texts();
  const at::Tensor want = tok.tokenize(texts);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { ok[t] = at::equal(tok.tokenize(texts), want) ? 1 : 0; });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 1);
}

TEST(ClipTokenizer, NonUtf8TextIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const ClipTokenizer tok(testfix::ib_path("bpe_simple_vocab_16e6.txt.gz"));
  try {
    tok.encode("caf\xE9 au lait");  // Latin-1 byte, not UTF-8
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte 3"), std::string::npos) << e.what();
  }
}

TEST(ClipTokenizer, MissingMergesFileIsInputError) {
  EXPECT_THROW(ClipTokenizer("/nonexistent/bpe_simple_vocab_16e6.txt.gz"), InputError);
}

TEST(ClipTextClean, PythonSemantics) {
  // html.unescape twice, whitespace collapse/strip, full lowercasing with final sigma.
  EXPECT_EQ(clip_clean_text("  A &amp;amp; B\t\n C  "), "a & b c");
  EXPECT_EQ(clip_clean_text("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");  // ΟΔΟΣ -> οδος
  EXPECT_EQ(html_unescape("&lt;&#65;&#x42;&notit; &amp &#0; &bogus;"), "<AB\xC2\xACit; & \xEF\xBF\xBD &bogus;");
  EXPECT_EQ(clip_clean_text("\xE2\x80\x9CQuoted\xE2\x80\x9D \xEF\xAC\x81le"), "\"quoted\" file");  // ftfy subset
}

}  // namespace
}  // namespace omnibind::preprocess
