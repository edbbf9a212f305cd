// Bundle manifests carry tokenizer files ("vocab": [...]) for experts whose text side needs more
// than a CLIP BPE file (wavcaps: vocab.txt; clap: vocab.json + merges.txt), and `convert` accepts
// them as repeatable vocab=FILE keys.
#include <gtest/gtest.h>

#include "omnibind/common/error.h"
#include "omnibind/pipeline/bundle_convert.h"
#include "omnibind/pipeline/bundle_manifest.h"
#include "testing/test_support.h"

using namespace omnibind;

TEST(BundleVocab, ManifestRoundTrip) {
  const std::string text = R"({"format":"omnibind-bundle","version":1,"binding":{"preset":"large"},
    "experts":[{"name":"CLAP_G","family":"clap","weights":"experts/CLAP_G/630k-fusion-best.pt",
                "vocab":["experts/CLAP_G/vocab.json","experts/CLAP_G/merges.txt"]}]})";
  auto m = pipeline::parse_bundle_manifest(text, "bundle.json");
  ASSERT_EQ(m.experts.size(), 1u);
  EXPECT_EQ(m.experts[0].vocab, (std::vector<std::string>{"experts/CLAP_G/vocab.json", "experts/CLAP_G/merges.txt"}));
  auto again = pipeline::parse_bundle_manifest(pipeline::bundle_manifest_to_json(m), "again");
  EXPECT_EQ(again.experts[0].vocab, m.experts[0].vocab);
  const std::string bad = R"({"format":"omnibind-bundle","version":1,"binding":{"preset":"large"},
    "experts":[{"name":"CLAP_G","family":"clap","weights":"w.pt","vocab":"vocab.json"}]})";
  EXPECT_NE(
      testkit::input_error_of([&] { pipeline::parse_bundle_manifest(bad, "bundle.json"); }).find("experts[0].vocab"),
      std::string::npos);
}

TEST(BundleVocab, ConvertSpec) {
  auto e = pipeline::parse_convert_expert(
      "WAVCAPS_PT=wavcaps:HTSAT-BERT-PT.pt,size=pt,vocab=vocab.txt,modalities=audio+text");
  EXPECT_EQ(e.vocab, (std::vector<std::string>{"vocab.txt"}));
  auto c = pipeline::parse_convert_expert("CLAP_G=clap:630k-fusion-best.pt,vocab=vocab.json,vocab=merges.txt");
  EXPECT_EQ(c.vocab, (std::vector<std::string>{"vocab.json", "merges.txt"}));
}
