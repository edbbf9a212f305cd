// Picking tokenizer files out of `--vocab` lists: by content (the fixtures' real files), by name, and
// one-line errors naming what is missing or ambiguous.
#include "omnibind/preprocess/tokenizer_files.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "testing/test_support.h"

namespace omnibind::preprocess {
namespace {

TEST(TokenizerFiles, FixtureFilesAreRecognisedByContent) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string bert = testkit::shared_path("fixtures/wavcaps_mini/bert-base-uncased-vocab.txt");
  const std::string mini = testkit::shared_path("fixtures/wavcaps_mini/vocab_mini.txt");
  const std::string vocab = testkit::shared_path("fixtures/clap_mini/fusion/roberta_vocab.json");
  const std::string merges = testkit::shared_path("fixtures/clap_mini/fusion/roberta_merges.txt");
  EXPECT_EQ(tokenizer_file_kind(bert), TokenizerFileKind::kWordPieceVocab);
  EXPECT_EQ(tokenizer_file_kind(mini), TokenizerFileKind::kWordPieceVocab);
  EXPECT_EQ(tokenizer_file_kind(vocab), TokenizerFileKind::kBpeVocabJson);
  EXPECT_EQ(tokenizer_file_kind(merges), TokenizerFileKind::kBpeMerges);

  const std::vector<std::string> all = {merges, bert, vocab};
  EXPECT_EQ(pick_wordpiece_vocab(all, "wavcaps"), bert);
  const BpeFiles bpe = pick_bpe_files(all, "clap");
  EXPECT_EQ(bpe.vocab_json, vocab);
  EXPECT_EQ(bpe.merges_txt, merges);

  std::string msg = testkit::input_error_of([&] { pick_bpe_files({vocab}, "clap"); });
  EXPECT_EQ(msg.rfind("clap: needs the BPE merges.txt", 0), 0u) << msg;
  EXPECT_NE(msg.find(vocab), std::string::npos) << msg;
  msg = testkit::input_error_of([&] { pick_wordpiece_vocab({}, "wavcaps"); });
  EXPECT_EQ(msg, "wavcaps: needs BERT's WordPiece vocab.txt (give it with --vocab); tokenizer files given: none");
  msg = testkit::input_error_of([&] { pick_wordpiece_vocab({bert, mini}, "wavcaps"); });
  EXPECT_EQ(msg.rfind("wavcaps: more than one BERT's WordPiece vocab.txt given", 0), 0u) << msg;
}

TEST(TokenizerFiles, NamesAndOtherFiles) {
  const std::string dir = testkit::make_temp_dir("tokenizer_files");
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    return dir + "/" + name;
  };
  EXPECT_EQ(tokenizer_file_kind(write("merges.txt", "a b\nb c\n")), TokenizerFileKind::kBpeMerges);
  EXPECT_EQ(tokenizer_file_kind(write("words.txt", "hello\nworld\n")), TokenizerFileKind::kWordPieceVocab);
  EXPECT_EQ(tokenizer_file_kind(write("spiece.model", std::string("\x0a\x0b\x00\x01", 4))), TokenizerFileKind::kOther);
  EXPECT_EQ(tokenizer_file_kind(write("v.json", "\xEF\xBB\xBF  {\"a\": 0}")), TokenizerFileKind::kBpeVocabJson);
  EXPECT_NE(testkit::input_error_of([] { tokenizer_file_kind("/nonexistent/vocab.txt"); }).find("cannot open"),
            std::string::npos);
}

}  // namespace
}  // namespace omnibind::preprocess
