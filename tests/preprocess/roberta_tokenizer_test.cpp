// RoBERTa byte-level BPE tokenizer parity with transformers 4.30's slow RobertaTokenizer as CLAP calls
// it (padding='max_length', truncation=True, max_length=77): token ids, attention masks and position
// ids of every clap_mini text (fusion and base), extra cases whose ids were produced by the reference
// code, GPT-2 pre-tokenisation, and bad input.
#include "omnibind/preprocess/roberta_tokenizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
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

std::string clap_path(const std::string& variant, const std::string& rel) {
  return testkit::shared_path("fixtures/clap_mini/" + variant + "/" + rel);
}

at::Tensor expected(const std::string& variant, const std::string& key) {
  const auto st = tensor_io::read_safetensors(clap_path(variant, "expected_text.safetensors"));
  return tensor_io::to_tensor(st.tensors.at(key)).clone();
}

std::vector<std::string> fixture_texts(const std::string& variant) {
  std::ifstream in(clap_path(variant, "inputs.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<std::string> out;
  for (const auto& t : j.at("texts")) out.push_back(t.at("text").get<std::string>());
  return out;
}

class RobertaFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(RobertaFixture, IdsMasksAndPositionsMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string v = GetParam();
  const RobertaBpeTokenizer tok(clap_path(v, "roberta_vocab.json"), clap_path(v, "roberta_merges.txt"));
  EXPECT_EQ(tok.vocab_size(), 50265);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.pad_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.mask_id(), 50264);
  const auto texts = fixture_texts(v);
  const TokenBatch got = tok.encode_batch(texts);  // 77, max_length padding
  const at::Tensor want_ids = expected(v, "text/input_ids");
  const at::Tensor want_mask = expected(v, "text/attention_mask");
  const at::Tensor want_pos = expected(v, "text/position_ids");
  ASSERT_EQ(got.input_ids.sizes(), want_ids.sizes());
  const at::Tensor pos = roberta_position_ids(got.input_ids, tok.pad_id());
  for (int64_t r = 0; r < want_ids.size(0); ++r) {
    EXPECT_TRUE(at::equal(got.input_ids[r], want_ids[r]))
        << v << " row " << r << ": " << texts[static_cast<size_t>(r)] << "\n got  " << got.input_ids[r] << "\n want "
        << want_ids[r];
    EXPECT_TRUE(at::equal(got.attention_mask[r], want_mask[r])) << v << " mask row " << r;
    // text/position_ids was made from the attention mask; the model derives positions from the ids
    // (see PositionIdsReproduceReferenceEmbeddings). They differ only where a literal "<pad>" (id 1)
    // is a real token: row 7 (special_token_literals), whose positions are checked by that test instead.
    const bool literal_pad = at::logical_and(got.input_ids[r].eq(1), got.attention_mask[r].eq(1)).any().item<bool>();
    if (!literal_pad)
      EXPECT_TRUE(at::equal(pos[r], want_pos[r]))
          << v << " position row " << r << "\n got  " << pos[r] << "\n want " << want_pos[r];
    EXPECT_EQ(literal_pad, r == 7) << v << " row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(ClapMini, RobertaFixture, ::testing::Values("fusion", "base"));

// Ids from the reference code (transformers 4.30.2 RobertaTokenizer bpe/_tokenize and
// PreTrainedTokenizer.tokenize with RoBERTa's AddedTokens, Python `regex`) with roberta-base's files:
// leading space, contractions (lower case only), whitespace runs (the last space joins the next word),
// <mask> swallowing all whitespace before it but not after, other literal tokens swallowing nothing,
// nested '<<s>>', U+001C (Python whitespace but not regex \s), NBSP/U+3000/U+2028 (regex \s),
// numbers of other scripts, ZWJ emoji sequences, a lone ZWSP, repeated letters, CRLF.
struct Case {
  std::string text;
  std::vector<int64_t> ids;
};
const std::vector<Case> kCases = {
    {"Hello world"s, {31414, 232}},
    {" Hello world"s, {20920, 232}},
    {"I'm here, you'll see. THEY'RE 'S it's"s, {100, 437, 259, 6, 47, 581, 192, 4, 36698, 108, 4629, 128, 104, 24, 18}},
    {"a  \x09\x0A b   c\x0A\x0A"s, {102, 1437, 1437, 50117, 50118, 741, 1437, 1437, 740, 50140}},
    {"x <mask>"s, {1178, 50264}},
    {"x\x09 \x0A<mask>y"s, {1178, 50264, 219}},
    {"<mask><mask> </s></s><s >"s, {50264, 50264, 1437, 2, 2, 41552, 29, 8061}},
    {"<<s>>"s, {41552, 0, 15698}},
    {"<pad><unk>\xE3\x80\x80<mask>"s, {1, 3, 50264}},
    {"tab\x1Cinfo\x1D"s, {34108, 50136, 23999, 50137}},
    {"\xC2\xA0nbsp x\xE3\x80\x80y\xE2\x80\xA8z"s, {50141, 282, 39596, 3023, 48516, 7471, 219, 17, 11423, 329}},
    {"na\xC3\xAFve caf\xC3\xA9 \xC2\xBD \xC2\xB2\xC2\xB3 \xD9\xA3\xD9\xA4 \xE2\x85\xAB"s,
     {2133, 48350, 26059, 18430, 5505, 14292, 4056, 15264, 36963, 2469, 26068, 10470, 14333, 5782, 4958}},
    {"\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 family"s,
     {31193, 11423, 17, 8384, 31193, 15375, 17, 8384, 31193, 6248, 284}},
    {"\xE2\x80\x8B"s, {13635}},
    {"<mask> is"s, {50264, 16}},
    {"the  <mask>"s, {627, 50264}},
    {"end <mask>  "s, {1397, 50264, 1437, 1437}},
    {"aaaaaaaaaaaaaaaa"s, {44172, 44172, 44172, 44172}},
    {"\xC3\x85ngstr\xC3\xB6m 1234567 3.14159"s,
     {3849, 5782, 2590, 6031, 3671, 119, 17072, 1898, 4111, 155, 4, 1570, 27129}},
    {"\x0D\x0Awindows\x0D\x0A"s, {50121, 50118, 47748, 50121, 50118}},
};

TEST(RobertaTokenizer, HandCheckedCasesMatchReference) {
  OMNIBIND_REQUIRE_SHARED();
  const RobertaBpeTokenizer tok(clap_path("fusion", "roberta_vocab.json"), clap_path("fusion", "roberta_merges.txt"));
  for (const Case& c : kCases) EXPECT_EQ(tok.encode(c.text), c.ids) << c.text;
  EXPECT_EQ(tok.tokenize("the <mask> sound</s> of <s>rain<pad>"),
            (std::vector<std::string>{"the", "<mask>", "\xC4\xA0sound", "</s>", "\xC4\xA0of", "\xC4\xA0", "<s>", "rain",
                                      "<pad>"}));
}

// The tokenizer merges with a heap; check it against the reference's round-by-round loop written out
// plainly here (lowest-ranked pair, all its occurrences left to right) on long single pre-tokens.
TEST(RobertaTokenizer, HeapBpeEqualsRoundByRoundMerging) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string merges_path = clap_path("fusion", "roberta_merges.txt");
  const RobertaBpeTokenizer tok(clap_path("fusion", "roberta_vocab.json"), merges_path);
  std::map<std::pair<std::string, std::string>, int> ranks;
  {
    std::ifstream in(merges_path);
    std::string line, a, b;
    std::getline(in, line);  // header
    for (int r = 0; std::getline(in, line); ++r) {
      std::istringstream fields(line);
      fields >> a >> b;
      ranks[{a, b}] = r;
    }
  }
  std::mt19937 rng(20241203);
  const std::string alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "etaoinshr", "ab", "a", "0123456789"};
  for (int t = 0; t < 100; ++t) {
    const std::string& alphabet = alphabets[t % 5];
    const bool space = rng() % 2;
    std::string text = space ? " " : "";
    const size_t n = 1 + rng() % 250;
    for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    std::vector<std::string> word;
    if (space) word.push_back("\xC4\xA0");  // the stand-in of the space byte
    for (size_t i = space ? 1 : 0; i < text.size(); ++i) word.push_back(std::string(1, text[i]));
    while (word.size() > 1) {
      int best = INT32_MAX;
      for (size_t i = 0; i + 1 < word.size(); ++i)
        if (auto it = ranks.find({word[i], word[i + 1]}); it != ranks.end()) best = std::min(best, it->second);
      if (best == INT32_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        const auto it = i + 1 < word.size() ? ranks.find({word[i], word[i + 1]}) : ranks.end();
        if (it != ranks.end() && it->second == best) {
          merged.push_back(word[i] + word[i + 1]);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word.swap(merged);
    }
    ASSERT_EQ(tok.tokenize(text), word) << text;
  }
}

TEST(RobertaTokenizer, Gpt2PreTokenizer) {
  EXPECT_EQ(gpt2_pretokenize("I'm  here,  you'LL\n\n see 42kHz!? "),
            (std::vector<std::string>{"I", "'m", " ", " here", ",", " ", " you", "'", "LL", "\n\n", " see", " 42",
                                      "kHz", "!?", " "}));
  EXPECT_EQ(gpt2_pretokenize(""), std::vector<std::string>{});
  EXPECT_EQ(gpt2_pretokenize("'''s '"), (std::vector<std::string>{"'''", "s", " '"}));
  EXPECT_EQ(gpt2_pretokenize("x's\t\ty"), (std::vector<std::string>{"x", "'s", "\t", "\t", "y"}));
}

// What RobertaEmbeddings really used: recompute the fixture's embedding output (word + position +
// token type 0, LayerNorm) from the mini weights with our ids and position ids. Row 7 holds a literal
// "<pad>" (id 1, attention mask 1); the model derives positions from the ids, so that token gets
// position 1 and the following ones are not shifted.
TEST_P(RobertaFixture, PositionIdsReproduceReferenceEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string v = GetParam();
  const RobertaBpeTokenizer tok(clap_path(v, "roberta_vocab.json"), clap_path(v, "roberta_merges.txt"));
  const TokenBatch got = tok.encode_batch(fixture_texts(v));
  const auto w = tensor_io::read_safetensors(clap_path(v, "weights.safetensors"));
  const auto weight = [&](const std::string& k) {
    return tensor_io::to_tensor(w.tensors.at("text_branch.embeddings." + k));
  };
  const at::Tensor x = at::embedding(weight("word_embeddings.weight"), got.input_ids) +
                       at::embedding(weight("position_embeddings.weight"), roberta_position_ids(got.input_ids)) +
                       weight("token_type_embeddings.weight")[0];
  const at::Tensor emb = at::layer_norm(x, {x.size(-1)}, weight("LayerNorm.weight"), weight("LayerNorm.bias"), 1e-5);
  const auto st = tensor_io::read_safetensors(clap_path(v, "expected_model.safetensors"));
  const at::Tensor want = tensor_io::to_tensor(st.tensors.at("text/embeddings_out"));
  ASSERT_EQ(emb.sizes(), want.sizes());
  for (int64_t r = 0; r < want.size(0); ++r)
    EXPECT_LE((emb[r] - want[r]).abs().max().item<float>(), 1e-5f) << v << " row " << r;
}

TEST(RobertaTokenizer, PositionIdsFromIds) {
  const at::Tensor ids = at::tensor({0, 10, 1, 11, 2, 1, 1}, at::kLong).view({1, 7});
  EXPECT_TRUE(at::equal(roberta_position_ids(ids), at::tensor({2, 3, 1, 4, 5, 1, 1}, at::kLong).view({1, 7})));
}

TEST(RobertaTokenizer, ThreadsShareOneTokenizer) {
  OMNIBIND_REQUIRE_SHARED();
  const RobertaBpeTokenizer tok(clap_path("fusion", "roberta_vocab.json"), clap_path("fusion", "roberta_merges.txt"));
  const auto texts = fixture_texts("fusion");
  const TokenBatch want = tok.encode_batch(texts);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      bool same = true;
      for (int k = 0; k < 20; ++k) same = same && at::equal(tok.encode_batch(texts).input_ids, want.input_ids);
      ok[t] = same ? 1 : 0;
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 1);
}

TEST(RobertaTokenizer, NonUtf8TextIsInputError) {
  OMNIBIND_REQUIRE_SHARED();
  const RobertaBpeTokenizer tok(clap_path("fusion", "roberta_vocab.json"), clap_path("fusion", "roberta_merges.txt"));
  EXPECT_NE(testkit::input_error_of([&] { tok.encode("na\xEFve"); }).find("invalid UTF-8 at byte 2"),
            std::string::npos);
  const std::string msg = testkit::input_error_of([&] { tok.encode_batch({"ok", "ok", "\xED\xA0\x80 surrogate"}); });
  EXPECT_EQ(msg.rfind("text 2: invalid UTF-8 at byte 0", 0), 0u) << msg;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = testkit::make_temp_dir("roberta_files") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

const char* const kTinyVocab = R"({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "ab": 6, "<mask>": 7})";

TEST(RobertaTokenizer, BadFilesAreInputErrors) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string vocab = clap_path("fusion", "roberta_vocab.json");
  const std::string merges = clap_path("fusion", "roberta_merges.txt");
  const auto err = [](const std::string& v, const std::string& m) {
    return testkit::input_error_of([&] { RobertaBpeTokenizer t(v, m); });
  };
  // Files swapped: merges.txt is not JSON.
  std::string msg = err(merges, vocab);
  EXPECT_NE(msg.find(merges + ": not a RoBERTa vocab.json"), std::string::npos) << msg;
  // A BERT vocab.txt as vocab.json.
  msg = err(testkit::shared_path("fixtures/wavcaps_mini/vocab_mini.txt"), merges);
  EXPECT_NE(msg.find("not a RoBERTa vocab.json"), std::string::npos) << msg;
  // vocab.json as merges: one line, no merges.
  msg = err(vocab, vocab);
  EXPECT_NE(msg.find(vocab + ": not a BPE merges.txt"), std::string::npos) << msg;
  // A malformed merge line names its line number.
  const std::string tiny = write_temp("vocab.json", kTinyVocab);
  msg = err(tiny, write_temp("merges.txt", "#version: 0.2\na b\na b c\n"));
  EXPECT_NE(msg.find("line 3 has 3 fields"), std::string::npos) << msg;
  // Merges that produce symbols the vocab lacks: files that do not belong together.
  msg = err(tiny, merges);
  EXPECT_NE(msg.find("do not belong together"), std::string::npos) << msg;
  // Missing special token, ids that are not integers, bytes that are not UTF-8, no file.
  EXPECT_NE(err(write_temp("v.json", R"({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3})"), merges).find("'<mask>'"),
            std::string::npos);
  EXPECT_NE(err(write_temp("v.json", R"({"<s>": "0"})"), merges).find("not a non-negative integer"), std::string::npos);
  EXPECT_NE(err(tiny, write_temp("m.txt", "#version\n\xFF\xFE\n"s)).find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(err("/nonexistent/vocab.json", merges).find("cannot open"), std::string::npos);
  for (const std::string& m : {err(merges, vocab), err(tiny, merges)}) EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(RobertaTokenizer, MergesFileReadAsPythonReadsIt) {
  // The first line is never a merge; neither is text after the last newline; CRLF is a newline;
  // blank lines are ignored; a symbol missing from the vocab becomes <unk>.
  const std::string vocab = write_temp("vocab.json", kTinyVocab);
  const RobertaBpeTokenizer with_merge(vocab, write_temp("m1.txt", "#version: 0.2\r\n\r\na b\r\n"));
  EXPECT_EQ(with_merge.encode("abc"), (std::vector<int64_t>{6, 3}));
  const RobertaBpeTokenizer last_line_dropped(vocab, write_temp("m2.txt", "#version: 0.2\n\na b\nb a"));
  EXPECT_EQ(last_line_dropped.encode("ab<mask>"), (std::vector<int64_t>{6, 7}));
  // Without a header, "a b" is taken as the header and "b a" (whose "ba" the vocab lacks) is the merge.
  EXPECT_NE(testkit::input_error_of([&] {
              RobertaBpeTokenizer t(vocab, write_temp("m3.txt", "a b\nb a\n"));
            }).find("do not belong together"),
            std::string::npos);
}

}  // namespace
}  // namespace omnibind::preprocess
