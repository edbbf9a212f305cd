// The paired listing of `omnibind zoo train`: parsing (relative paths, groups, comments), one-line
// errors naming the line, and decoding into trainer inputs (absent members, fresh groups).
#include "omnibind/training/zoo/zoo_pairs_file.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"
#include "testing/test_support.h"

namespace tz = omnibind::training::zoo;
namespace ez = omnibind::experts::zoo;

namespace {

struct Fixture {
  std::string dir = omnibind::testkit::make_temp_dir("zoo_pairs");
  Fixture() {
    omnibind::media::Audio a;
    a.sample_rate = 8000;
    a.channels.assign(1, std::vector<float>(4000));
    for (size_t i = 0; i < a.channels[0].size(); ++i) a.channels[0][i] = 0.5f * std::sin(0.3f * static_cast<float>(i));
    omnibind::media::write_wav(dir + "/a.wav", a);
    omnibind::media::Image im;
    im.width = 10;
    im.height = 12;
    im.rgb.assign(10 * 12 * 3, 200);
    omnibind::media::write_png(dir + "/b.png", im);
  }
};

}  // namespace

TEST(ZooPairsFile, ParsesItemsResolvesPathsAndGroups) {
  Fixture f;
  const std::string text =
      "# a comment\n"
      "{\"audio\": \"a.wav\", \"text\": \"one\", \"group\": 4}\n"
      "\n"
      "{\"image\": \"b.png\", \"text\": \"two\"}\r\n"
      "{\"audio\": \"" + f.dir + "/a.wav\", \"image\": \"b.png\", \"text\": \"three\", \"group\": 4}\n"
      "{\"image\": \"b.png\", \"text\": \"two\"}\n"
      "{\"audio\": \"a.wav\", \"text\": \"two\", \"group\": \"4\"}\n";
  auto l = tz::parse_zoo_pairs(text, f.dir + "/pairs.jsonl", {"audio", "image", "text"});
  ASSERT_EQ(l.items.size(), 5u);
  EXPECT_EQ(l.items[0].line, 2);
  EXPECT_EQ(l.items[1].line, 4);
  EXPECT_EQ(l.items[0].values.at("audio"), f.dir + "/a.wav");
  EXPECT_EQ(l.items[1].values.at("image"), f.dir + "/b.png");
  EXPECT_EQ(l.items[1].values.at("text"), "two");
  EXPECT_EQ(l.items[0].group, "4");
  EXPECT_EQ(l.items[1].group, "");
  EXPECT_EQ(l.modalities, (std::vector<std::string>{"audio", "image", "text"}));

  auto c = ez::default_zoo_config({"audio", "image", "text"}, 16, "AIT");
  auto d = tz::load_zoo_pairs(l, c);
  EXPECT_EQ(d.items(), 5);
  EXPECT_EQ(d.inputs.at("audio").sizes(), (at::IntArrayRef{5, 1, c.audio->frames, c.audio->mel_bins}));
  EXPECT_EQ(d.inputs.at("image").sizes(), (at::IntArrayRef{5, 1, 28, 28}));
  EXPECT_EQ(d.inputs.at("text").sizes(), (at::IntArrayRef{5, c.text->max_tokens}));
  EXPECT_TRUE(at::equal(d.present.at("audio").to(at::kLong), at::tensor({1, 0, 1, 0, 1}, at::kLong)));
  EXPECT_TRUE(at::equal(d.present.at("image").to(at::kLong), at::tensor({0, 1, 1, 1, 0}, at::kLong)));
  EXPECT_EQ(d.present.at("text").all().item<bool>(), true);
  EXPECT_EQ(d.inputs.at("audio")[1].abs().sum().item<float>(), 0.0f);  // the absent member is a zero row
  EXPECT_TRUE(at::equal(d.inputs.at("audio")[0], d.inputs.at("audio")[2]));
  // Dense ids, first seen first: group 4 (items 0, 2), text "two" without a group (items 1, 3), the
  // string group "4" (item 4) -- a different group from the integer 4.
  EXPECT_TRUE(at::equal(d.group, at::tensor({0, 1, 0, 1, 2}, at::kLong)));
}

TEST(ZooPairsFile, BadListingsAreOneLineErrorsNamingTheLine) {
  Fixture f;
  const std::string p = f.dir + "/p.jsonl";
  const std::vector<std::string> at{"audio", "text"};
  const std::string ok = "{\"audio\": \"a.wav\", \"text\": \"one\"}\n";
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases{
      {ok + "{\"audio\": \"a.wav\", \"text\": \"one\"\n", "p.jsonl:2: bad JSON"},
      {ok + "[1, 2]\n", "p.jsonl:2: expected a JSON object"},
      {ok + ok + "{\"audio\": \"missing.wav\", \"text\": \"x\"}\n", "p.jsonl:3: no such file " + f.dir + "/missing.wav"},
      {ok + "{\"image\": \"b.png\", \"text\": \"x\"}\n", "p.jsonl:2: modality \"image\" is not in --modalities (audio,text)"},
      {ok + "{\"video\": \"b.png\"}\n", "p.jsonl:2: unknown field \"video\""},
      {ok + "{\"audio\": 3}\n", "p.jsonl:2: \"audio\" must be a string"},
      {ok + "{\"text\": \"\"}\n", "p.jsonl:2: \"text\" is empty"},
      {ok + "{\"text\": \"x\", \"group\": 1.5}\n", "p.jsonl:2: \"group\" must be an integer or a non-empty string"},
      {ok + "{\"text\": \"x\", \"group\": [1]}\n", "p.jsonl:2: \"group\" must be an integer or a non-empty string"},
      {ok + "{}\n", "p.jsonl:2: the item names no modality"},
      {"", "p.jsonl: no items"},
      {"{\"text\": \"a\"}\n{\"text\": \"b\"}\n", "at least 2 modalities"},
      {"{\"text\": \"a\"}\n{\"audio\": \"a.wav\"}\n", "no item pairs two modalities"},
  };
  for (const auto& c : cases) {
    std::string e = omnibind::testkit::input_error_of([&] { tz::parse_zoo_pairs(c.text, p, at); });
    EXPECT_NE(e.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(omnibind::testkit::input_error_of([&] { tz::parse_zoo_pairs(ok, p, {"audio", "image", "text"}); }).find("no item has image"),
            std::string::npos);
  // A file that exists but does not decode: the error names the listing's line.
  std::ofstream(f.dir + "/bad.wav") << "not a wav";
  auto l = tz::parse_zoo_pairs(ok + "{\"audio\": \"bad.wav\", \"text\": \"x\"}\n", p, at);
  std::string e = omnibind::testkit::input_error_of([&] { tz::load_zoo_pairs(l, ez::default_zoo_config(at, 16, "AT")); });
  EXPECT_NE(e.find("p.jsonl:2: "), std::string::npos) << e;
  EXPECT_NE(omnibind::testkit::input_error_of([&] { tz::read_zoo_pairs(f.dir + "/none.jsonl", at); }), "");
}
