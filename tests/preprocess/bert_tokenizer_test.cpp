// BERT WordPiece tokenizer parity with transformers 4.30's slow BertTokenizer as WavCaps calls it
// (padding='longest', truncation=True, max_length=30, batches of 8): token ids and attention masks of
// every wavcaps_mini text with the fixture vocab and the real bert-base-uncased vocab, the WordPieces
// of inputs.json, extra cases whose ids were produced by the reference code, and bad input.
#include "omnibind/preprocess/bert_tokenizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::preprocess {
namespace {

using namespace std::string_literals;

std::string wc_path(const std::string& rel) { return testkit::shared_path("fixtures/wavcaps_mini/" + rel); }

at::Tensor expected(const std::string& key) {
  const auto st = tensor_io::read_safetensors(wc_path("expected_text.safetensors"));
  return tensor_io::to_tensor(st.tensors.at(key)).clone();
}

nlohmann::json fixture_texts() {
  std::ifstream in(wc_path("inputs.json"));
  return nlohmann::json::parse(in).at("texts");
}

std::vector<std::string> texts_of(const nlohmann::json& texts, size_t begin, size_t end) {
  std::vector<std::string> out;
  for (size_t i = begin; i < end; ++i) out.push_back(texts.at(i).at("text").get<std::string>());
  return out;
}

// OmniBind's emb_texts: batches of 8, each padded to its own longest row.
void expect_batches_match(const BertWordPieceTokenizer& tok, const std::string& prefix) {
  const auto texts = fixture_texts();
  ASSERT_EQ(texts.size(), 10u);
  const size_t bounds[][2] = {{0, 8}, {8, 10}};
  for (int b = 0; b < 2; ++b) {
    const auto batch = texts_of(texts, bounds[b][0], bounds[b][1]);
    const TokenBatch got = tok.encode_batch(batch, 30, TextPadding::kLongest);
    const std::string key = prefix + "batch" + std::to_string(b) + "/";
    const at::Tensor want_ids = expected(key + "input_ids");
    const at::Tensor want_mask = expected(key + "attention_mask");
    ASSERT_EQ(got.input_ids.sizes(), want_ids.sizes()) << key;
    ASSERT_EQ(got.attention_mask.sizes(), want_mask.sizes()) << key;
    for (int64_t r = 0; r < want_ids.size(0); ++r) {
      EXPECT_TRUE(at::equal(got.input_ids[r], want_ids[r]))
          << key << " row " << r << ": " << batch[static_cast<size_t>(r)] << "\n got  " << got.input_ids[r]
          << "\n want " << want_ids[r];
      EXPECT_TRUE(at::equal(got.attention_mask[r], want_mask[r])) << key << " mask row " << r;
    }
  }
}

TEST(BertTokenizer, FixtureVocabIdsAndMasksMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("vocab_mini.txt"));
  EXPECT_EQ(tok.vocab_size(), 2500);
  expect_batches_match(tok, "text/");
}

TEST(BertTokenizer, RealVocabIdsAndMasksMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("bert-base-uncased-vocab.txt"));
  EXPECT_EQ(tok.vocab_size(), 30522);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.mask_id(), 103);
  expect_batches_match(tok, "text/real_vocab/");  // batch 1 is padded to 23, not 30
}

TEST(BertTokenizer, WordPiecesMatchInputsJson) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer mini(wc_path("vocab_mini.txt"));
  const BertWordPieceTokenizer real(wc_path("bert-base-uncased-vocab.txt"));
  for (const auto& t : fixture_texts()) {
    const std::string text = t.at("text").get<std::string>();
    EXPECT_EQ(mini.tokenize(text), t.at("mini_vocab_wordpieces").get<std::vector<std::string>>()) << text;
    EXPECT_EQ(real.tokenize(text), t.at("real_vocab_wordpieces").get<std::vector<std::string>>()) << text;
  }
}

// Ids from the reference code (transformers 4.30.2 BasicTokenizer/WordpieceTokenizer/tokenize run on
// these strings with the real vocab): dotted capital I, per-character lowercasing (capital sigma
// never becomes final sigma), titlecase and number-letter words, accents, CJK vs kana vs hangul
// (hangul decomposes to jamo under NFD), format characters (ZWSP, ZWJ, BOM, soft hyphen) removed,
// U+2028/2029 splitting words, C0 controls removed, literal special tokens (upper case only,
// a ZWSP inside breaks them), 100 vs 101 characters, ASCII and Unicode punctuation, U+FFFD/NUL,
// emoji, no NFKC (ligature, full-width), code points unassigned in Unicode 14 removed, the CJK
// extension blocks, and the classic WordPiece example.
struct Case {
  std::string text;
  std::vector<int64_t> ids;
};
const std::vector<Case> kRealVocabCases = {
    {"\xC4\xB0stanbul \xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xC7\x85"
     "emal \xE2\x85\xAB"s,
     {9960, 1169, 29722, 29730, 29733, 100, 100}},
    {"Cr\xC3\xA8me Br\xC3\xBBl\xC3\xA9"
     "e \xC3\xA0 la carte, \xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC"s,
     {13675, 21382, 7987, 9307, 2063, 1037, 2474, 11122, 2063, 1010, 1159, 29727, 29727, 24824, 16177, 18199, 29726,
      14608}},
    {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xE4\xB8\xAD\xE6\x96\x87"s,
     {1864, 1876, 1950, 1671, 30239, 30227, 30233, 30240, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 1746,
      1861}},
    {"zero\xE2\x80\x8Bwidth\xE2\x80\x8Djoiner\xEF\xBB\xBF"
     "bom\xC2\xADsoft"s,
     {5717, 9148, 11927, 2232, 5558, 26455, 5092, 5244, 15794}},
    {"line\xE2\x80\xA8sep\xE2\x80\xA9para\xC2\x85nel"s, {2240, 19802, 11498, 11877}},
    {"tab\x1Cinfo\x0Bvt\x0C"
     "ff"s,
     {21628, 2378, 14876, 2615, 24475, 2546}},
    {"[CLS] hello [MASK] world[SEP] [cls] [CL\xE2\x80\x8BS] [PAD]x"s,
     {101, 7592, 103, 2088, 102, 1031, 18856, 2015, 1033, 1031, 18856, 2015, 1033, 0, 1060}},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"s,
     {13360, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
      11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
      11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
      11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 2050,  100}},
    {"$100 + 5^2 = `x` ~ |y| #tag @me"s,
     {1002, 2531, 1009, 1019, 1034, 1016, 1027, 1036, 1060, 1036, 1066, 1064, 1061, 1064, 1001, 6415, 1030, 2033}},
    {"\xC2\xBFQu\xC3\xA9? \xC2\xABquote\xC2\xBB \xE2\x80\x94 \xE2\x80\x98single\xE2\x80\x99 \xE2\x80\xA6 \xE3\x83\xBB"s,
     {1094, 10861, 1029, 1077, 14686, 1090, 1517, 1520, 2309, 1521, 1529, 1738}},
    {"\xEF\xBF\xBD\x00null \xF0\x9F\x98\x80"
     "emoji smile\xF0\x9F\x98\x80"s,
     {19701, 100, 100}},
    {"\xEF\xAC\x81ne \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3 \xEF\xBD\x81\xEF\xBD\x82\xEF\xBD\x83 x\xE3\x80\x80y\xC2\xA0z"s,
     {1984, 2638, 100, 100, 1060, 1061, 1062}},
    {"a\xF0\x9E\x93\x90"
     "b c\xF0\xB1\x8D\x90"
     "d e\xF0\xAB\xA0\xA0"
     "f \xF0\xAF\xA0\x80 \xE3\x90\x80"s,
     {11113, 3729, 1041, 100, 1042, 100, 100}},
    {"unaffable running jumped"s, {14477, 20961, 3468, 2770, 5598}},
};

TEST(BertTokenizer, HandCheckedCasesMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("bert-base-uncased-vocab.txt"));
  for (const Case& c : kRealVocabCases) EXPECT_EQ(tok.encode(c.text), c.ids) << c.text;
  EXPECT_EQ(tok.tokenize("\xC4\xB0stanbul \xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"),
            (std::vector<std::string>{"istanbul", "\xCE\xBF", "##\xCE\xB4", "##\xCE\xBF", "##\xCF\x83"}));
}

TEST(BertTokenizer, TruncatesToMaxLengthAndPadsToLongestOrMaxLength) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("bert-base-uncased-vocab.txt"));
  const std::vector<std::string> texts = {"one two three four five six", "", "dog"};
  const TokenBatch b = tok.encode_batch(texts, 5, TextPadding::kLongest);
  ASSERT_EQ(b.input_ids.sizes(), (at::IntArrayRef{3, 5}));
  const auto row = [&](int64_t r) {
    return std::vector<int64_t>(b.input_ids[r].data_ptr<int64_t>(), b.input_ids[r].data_ptr<int64_t>() + 5);
  };
  const auto ids = tok.encode("one two three");
  EXPECT_EQ(row(0), (std::vector<int64_t>{101, ids[0], ids[1], ids[2], 102}));
  EXPECT_EQ(row(1), (std::vector<int64_t>{101, 102, 0, 0, 0}));
  EXPECT_EQ(row(2), (std::vector<int64_t>{101, tok.encode("dog")[0], 102, 0, 0}));
  EXPECT_TRUE(
      at::equal(b.attention_mask, at::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0}, at::kLong).view({3, 5})));
  const TokenBatch fixed = tok.encode_batch({"dog"}, 30, TextPadding::kMaxLength);
  EXPECT_EQ(fixed.input_ids.size(1), 30);
  EXPECT_EQ(fixed.attention_mask.sum().item<int64_t>(), 3);
  const TokenBatch none = tok.encode_batch({}, 30, TextPadding::kLongest);
  EXPECT_EQ(none.input_ids.size(0), 0);
  EXPECT_NE(testkit::input_error_of([&] { tok.encode_batch({"dog"}, 2); }).find("max_length"), std::string::npos);
}

TEST(BertTokenizer, BasicTokenizerSteps) {
  EXPECT_EQ(bert_basic_tokenize("  H\xC3\xA9llo,\tWORLD!\xE4\xB8\xAD\xE6\x96\x87x "),
            (std::vector<std::string>{"hello", ",", "world", "!", "\xE4\xB8\xAD", "\xE6\x96\x87", "x"}));
  EXPECT_EQ(bert_basic_tokenize("H\xC3\xA9llo", /*lower_case=*/false), (std::vector<std::string>{"H\xC3\xA9llo"}));
}

TEST(BertTokenizer, ThreadsShareOneTokenizer) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("bert-base-uncased-vocab.txt"));
  const auto texts = texts_of(fixture_texts(), 0, 10);
  const TokenBatch want = tok.encode_batch(texts);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      bool same = true;
      for (int k = 0; k < 20; ++k) {
        const TokenBatch b = tok.encode_batch(texts);
        same = same && at::equal(b.input_ids, want.input_ids) && at::equal(b.attention_mask, want.attention_mask);
      }
      ok[t] = same ? 1 : 0;
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 1);
}

TEST(BertTokenizer, NonUtf8TextIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const BertWordPieceTokenizer tok(wc_path("vocab_mini.txt"));
  EXPECT_NE(testkit::input_error_of([&] { tok.encode("caf\xE9 au lait"); }).find("invalid UTF-8 at byte 3"),
            std::string::npos);
  const std::string msg = testkit::input_error_of([&] { tok.encode_batch({"fine", "bad \xC3("}); });
  EXPECT_EQ(msg.rfind("text 1: invalid UTF-8 at byte 4", 0), 0u) << msg;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = testkit::make_temp_dir("bert_vocab") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(BertTokenizer, NotAVocabFileIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string json = testkit::shared_path("fixtures/clap_mini/fusion/roberta_vocab.json");
  std::string msg = testkit::input_error_of([&] { BertWordPieceTokenizer t(json); });
  EXPECT_NE(msg.find(json), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a BERT vocab.txt"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

  const std::string binary = write_temp("vocab.txt", "\x89PNG\r\n\x1a\n\xff\xfe\x00\x01"s);
  msg = testkit::input_error_of([&] { BertWordPieceTokenizer t(binary); });
  EXPECT_NE(msg.find("invalid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find(binary), std::string::npos) << msg;

  const std::string empty = write_temp("empty.txt", "");
  EXPECT_NE(testkit::input_error_of([&] { BertWordPieceTokenizer t(empty); }).find("empty"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { BertWordPieceTokenizer t("/nonexistent/vocab.txt"); }).find("cannot open"),
            std::string::npos);
}

TEST(BertTokenizer, VocabLinesAsPythonReadsThem) {
  // Universal newlines (\r\n, \r), the line's other whitespace kept, a later duplicate overriding the id.
  const std::string path = write_temp("v.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n[MASK]\nab\n##c\nab\nx \n");
  const BertWordPieceTokenizer tok(path);
  EXPECT_EQ(tok.vocab_size(), 9);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.encode("abc x"), (std::vector<int64_t>{7, 6, 1}));  // "ab" -> line 7, "x" (vocab has "x ") -> [UNK]
}

}  // namespace
}  // namespace omnibind::preprocess
