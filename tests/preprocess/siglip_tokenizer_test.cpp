// SigLIP's SentencePiece tokenizer against the siglip_mini fixtures (tiny trained spiece.model; ids
// and pieces of transformers 4.37.2's SiglipTokenizer as inputs.json / expected_text.safetensors
// give them), plus the over-long and bad-file behaviour.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/siglip_tokenizer.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using omnibind::preprocess::SiglipTokenizer;
namespace testkit = omnibind::testkit;

namespace {

const char* kFolders[] = {"large16", "so400m14"};

std::string fixture(const std::string& folder, const std::string& rel) {
  return testkit::shared_path("fixtures/siglip_mini/" + folder + "/" + rel);
}

nlohmann::json inputs_json(const std::string& folder) {
  std::ifstream in(fixture(folder, "inputs.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

at::Tensor expected_text(const std::string& folder, const std::string& key) {
  auto st = omnibind::tensor_io::read_safetensors(fixture(folder, "expected_text.safetensors"));
  return omnibind::tensor_io::to_tensor(st.tensors.at(key)).clone();
}

std::vector<int64_t> to_vec(const at::Tensor& t) {
  auto c = t.contiguous().to(at::kLong);
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  std::string path = testkit::make_temp_dir("siglip_tok") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST(SiglipTokenizer, BatchIdsIdenticalToTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string folder : kFolders) {
    SiglipTokenizer tok(fixture(folder, "spiece.model"));
    EXPECT_EQ(tok.eos_id(), 1);
    EXPECT_EQ(tok.unk_id(), 2);
    EXPECT_EQ(tok.vocab_size(), 135);
    auto doc = inputs_json(folder);
    std::vector<std::string> texts;
    for (const auto& t : doc["texts"]) texts.push_back(t["text"].get<std::string>());
    auto ids = tok.tokenize(texts, 64);
    auto want = expected_text(folder, "input_ids");
    ASSERT_EQ(ids.sizes(), want.sizes()) << folder;
    EXPECT_TRUE(at::equal(ids, want)) << folder;
    // Row by row, for a readable failure.
    for (size_t r = 0; r < texts.size(); ++r) {
      const auto& t = doc["texts"][r];
      EXPECT_EQ(tok.pieces(texts[r]), t["pieces"].get<std::vector<std::string>>()) << t["name"];
      EXPECT_EQ(tok.encode(texts[r]), t["ids"].get<std::vector<int64_t>>()) << t["name"];
    }
  }
}

TEST(SiglipTokenizer, QuirksOfTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  SiglipTokenizer tok(fixture("large16", "spiece.model"));
  // Empty text: only "</s>", then padding (also "</s>").
  EXPECT_EQ(tok.encode(""), std::vector<int64_t>{1});
  // ASCII punctuation vanishes inside words, case is folded, whitespace runs collapse.
  EXPECT_EQ(tok.encode("Dummy_Text"), tok.encode("dummytext"));
  EXPECT_EQ(tok.encode("a   photo\tof\ntrain!"), tok.encode("a photo of train"));
  // A literal "</S>" becomes the eos; a text ending in it gets no second one.
  auto ids = tok.encode("a dog </S>");
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 28, 1}));
  // Leading whitespace survives canonicalisation ("\u2581 hello"); trailing does not.
  EXPECT_EQ(tok.pieces("  hello").front(), "\xE2\x96\x81");
  EXPECT_EQ(tok.pieces("a dog  "), tok.pieces("a dog"));
  // Per-character lower-casing: no final sigma (the fixture's "οδοσ").
  EXPECT_EQ(tok.pieces("ΟΔΟΣ"), tok.pieces("οδοσ"));
  // A text of exactly 64 ids fills the row; pooling then reads its own "</s>".
  auto doc = inputs_json("large16");
  auto row = tok.tokenize({doc["texts"][7]["text"].get<std::string>()}, 64);
  EXPECT_EQ(row[0][63].item<int64_t>(), 1);
  EXPECT_NE(row[0][62].item<int64_t>(), 1);
}

TEST(SiglipTokenizer, OverLongTextIsAnInputErrorNotATruncation) {
  OMNIBIND_REQUIRE_SHARED();
  SiglipTokenizer tok(fixture("large16", "spiece.model"));
  auto doc = inputs_json("large16");
  const auto& lng = doc["texts_outside_the_batch"][0];
  const std::string text = lng["text"].get<std::string>();
  // The untruncated ids are the reference's (149 of them) ...
  EXPECT_EQ(tok.encode(text), to_vec(expected_text("large16", "long_over_64/input_ids_untruncated")));
  // ... truncation=True would keep 63 + "</s>" (available explicitly, not used by the expert) ...
  EXPECT_EQ(tok.encode_truncated(text, 64), to_vec(expected_text("large16", "long_over_64/input_ids_truncation_true")));
  // ... and batching them is refused with one line naming the text and the count.
  std::string msg = testkit::input_error_of([&] { tok.tokenize({"a dog", text}, 64); });
  EXPECT_NE(msg.find("149 SigLIP tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'On a bright"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(SiglipTokenizer, InvalidUtf8IsAnInputError) {
  OMNIBIND_REQUIRE_SHARED();
  SiglipTokenizer tok(fixture("large16", "spiece.model"));
  EXPECT_NE(testkit::input_error_of([&] { tok.tokenize({std::string("a \xff dog")}, 64); }).find("UTF-8"),
            std::string::npos);
}

TEST(SiglipTokenizer, NotASentencePieceFileIsOneLineNamingIt) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string text_file = write_temp("vocab.txt", "[PAD]\n[UNK]\nhello\nworld\n");
  const std::string empty = write_temp("empty.model", "");
  for (const std::string& path : {text_file, empty, fixture("large16", "config.json"),
                                  fixture("large16", "weights.safetensors")}) {
    std::string msg = testkit::input_error_of([&] { SiglipTokenizer t(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a SentencePiece model"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  std::string missing = testkit::input_error_of([] { SiglipTokenizer t("/nonexistent/spiece.model"); });
  EXPECT_NE(missing.find("/nonexistent/spiece.model"), std::string::npos) << missing;
}
