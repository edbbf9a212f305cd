// `omnibind embed --expert wavcaps|clap ...` end to end on the wavcaps_mini / clap_mini fixtures
// (rows in input order, equal to the reference embeddings), `omnibind inspect` on both checkpoint
// families, and bad input: one line on stderr, exit 2, nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/tensor_io/safetensors.h"
#include "testing/test_support.h"

namespace {
using omnibind::testkit::expect_exit2;

namespace fs = std::filesystem;
namespace testkit = omnibind::testkit;
using omnibind::tensor_io::read_safetensors;

std::string wavcaps(const std::string& rel) { return testkit::shared_path("fixtures/wavcaps_mini/" + rel); }
std::string clap(const std::string& kind, const std::string& rel) {
  return testkit::shared_path("fixtures/clap_mini/" + kind + "/" + rel);
}

struct Matrix {
  std::vector<int64_t> shape;
  std::vector<float> v;
  const float* row(int64_t i) const { return v.data() + i * shape[1]; }
};
Matrix read_f32(const std::string& path, const std::string& key) {
  auto f = read_safetensors(path);
  const auto& t = f.tensors.at(key);
  Matrix m{t.shape, std::vector<float>(static_cast<size_t>(t.numel()))};
  std::memcpy(m.v.data(), t.data + t.storage_offset * 4, m.v.size() * 4);
  return m;
}

// Every row of `got` against row order[i] of `want`: cosine >= 0.99999 and max abs <= 1e-4.
void expect_rows(const Matrix& got, const Matrix& want, const std::vector<int64_t>& order, const std::string& what) {
  ASSERT_EQ(got.shape.size(), 2u);
  ASSERT_EQ(got.shape[0], static_cast<int64_t>(order.size())) << what;
  ASSERT_EQ(got.shape[1], want.shape[1]) << what;
  const int64_t d = got.shape[1];
  for (size_t i = 0; i < order.size(); ++i) {
    const float *a = got.row(static_cast<int64_t>(i)), *b = want.row(order[i]);
    double dot = 0, na = 0, nb = 0, mx = 0;
    for (int64_t j = 0; j < d; ++j) {
      dot += double(a[j]) * b[j];
      na += double(a[j]) * a[j];
      nb += double(b[j]) * b[j];
      mx = std::max(mx, std::abs(double(a[j]) - b[j]));
    }
    EXPECT_GE(dot / std::sqrt(na * nb), 0.99999) << what << " row " << i;
    EXPECT_LE(mx, 1e-4) << what << " row " << i;
  }
}

std::vector<nlohmann::json> list(const std::string& inputs_json, const char* key) {
  auto j = nlohmann::json::parse(omnibind::read_file_bytes(inputs_json));
  return j[key].get<std::vector<nlohmann::json>>();
}

std::vector<std::string> wavcaps_args(const std::string& modality, const std::string& out) {
  return {"embed",
          "--expert",
          "wavcaps",
          "--weights",
          wavcaps("weights.pt"),
          "--config",
          wavcaps("config.json"),
          "--vocab",
          wavcaps("vocab_mini.txt"),
          "--modality",
          modality,
          "--out",
          out};
}
std::vector<std::string> clap_args(const std::string& kind, const std::string& modality, const std::string& out) {
  return {"embed",
          "--expert",
          "clap",
          "--weights",
          clap(kind, "weights.pt"),
          "--config",
          clap(kind, "config.json"),
          "--vocab",
          clap(kind, "roberta_vocab.json"),
          "--vocab",
          clap(kind, "roberta_merges.txt"),
          "--modality",
          modality,
          "--out",
          out};
}

}  // namespace

TEST(AudioTextEmbedCli, WavCapsAudioRowsInInputOrder) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("wavcaps_cli"), out = dir + "/a.safetensors";
  auto args = wavcaps_args("audio", out);
  auto audio = list(wavcaps("inputs.json"), "audio");
  std::vector<int64_t> order;
  for (int64_t i = static_cast<int64_t>(audio.size()) - 1; i >= 0; --i) {  // reversed on purpose
    args.push_back(wavcaps(audio[i]["file"].get<std::string>()));
    order.push_back(i);
  }
  args.insert(args.end(), {"--batch", "3", "--size", "ft_clo"});
  auto r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_rows(read_f32(out, "WAVCAPS_FT_clo"), read_f32(wavcaps("expected_model.safetensors"), "model/audio_embeds"),
              order, "wavcaps audio");
}

// A repeatable option takes one value per occurrence: inputs right after `--vocab FILE` stay inputs.
TEST(AudioTextEmbedCli, InputsAfterARepeatableOptionAreInputs) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("clap_cli_vocab_order"), out = dir + "/a.safetensors";
  auto audio = list(clap("base", "inputs.json"), "audio");
  ASSERT_GE(audio.size(), 2u);
  auto r = testkit::run_cli({"embed", "--expert", "clap", "--weights", clap("base", "weights.pt"), "--config",
                             clap("base", "config.json"), "--modality", "audio", "--out", out, "--vocab",
                             clap("base", "roberta_vocab.json"), "--vocab", clap("base", "roberta_merges.txt"),
                             clap("base", "inputs/" + audio[0]["file"].get<std::string>()),
                             clap("base", "inputs/" + audio[1]["file"].get<std::string>())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_f32(out, "CLAP_M").shape[0], 2);
}

TEST(AudioTextEmbedCli, WavCapsTexts) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("wavcaps_cli_t"), out = dir + "/t.safetensors";
  auto args = wavcaps_args("text", out);
  auto texts = list(wavcaps("inputs.json"), "texts");
  std::vector<int64_t> order;
  for (size_t i = 0; i < texts.size(); ++i) {
    args.insert(args.end(), {"--text", texts[i]["text"].get<std::string>()});
    order.push_back(static_cast<int64_t>(i));
  }
  auto r = testkit::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_rows(read_f32(out, "WAVCAPS_PT"), read_f32(wavcaps("expected_model.safetensors"), "model/text_embeds"), order,
              "wavcaps text");
}

TEST(AudioTextEmbedCli, ClapFusionAudioWithRecordedDrawsAndBaseText) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("clap_cli");
  {
    const std::string out = dir + "/g.safetensors";
    auto args = clap_args("fusion", "audio", out);
    args.insert(args.end(), {"--crop-draws", clap("fusion", "inputs.json")});
    std::vector<int64_t> order;
    auto audio = list(clap("fusion", "inputs.json"), "audio");
    for (size_t i = 0; i < audio.size(); ++i) {
      args.push_back(clap("fusion", "inputs/" + audio[i]["file"].get<std::string>()));
      order.push_back(static_cast<int64_t>(i));
    }
    auto r = testkit::run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_rows(read_f32(out, "CLAP_G"), read_f32(clap("fusion", "expected_model.safetensors"), "audio/omnibind"),
                order, "clap fusion audio");
  }
  {
    const std::string out = dir + "/m.safetensors";
    auto args = clap_args("base", "text", out);
    std::vector<int64_t> order;
    auto texts = list(clap("base", "inputs.json"), "texts");
    for (size_t i = 0; i < texts.size(); ++i) {
      args.insert(args.end(), {"--text", texts[i]["text"].get<std::string>()});
      order.push_back(static_cast<int64_t>(i));
    }
    auto r = testkit::run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_rows(read_f32(out, "CLAP_M"), read_f32(clap("base", "expected_model.safetensors"), "text/omnibind"), order,
                "clap base text");
  }
}

TEST(AudioTextEmbedCli, BadInputOneLineExit2NothingWritten) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string dir = testkit::make_temp_dir("audio_text_bad"), out = dir + "/x.safetensors";
  std::ofstream(dir + "/empty.wav", std::ios::binary) << "";
  std::ofstream(dir + "/corrupt.wav", std::ios::binary) << "RIFF\x24\x00\x00\x00WAVEfmt garbage garbage";
  {
    const std::string bytes = omnibind::read_file_bytes(wavcaps("inputs/dog_audio.wav"));
    std::ofstream(dir + "/truncated.wav", std::ios::binary) << bytes.substr(0, 30);
    const std::string ckpt = omnibind::read_file_bytes(wavcaps("weights.pt"));
    std::ofstream(dir + "/cut.pt", std::ios::binary) << ckpt.substr(0, ckpt.size() / 3);
  }
  std::ofstream(dir + "/vocab.txt", std::ios::binary) << "\x89PNG\r\n\x1a\n not a vocabulary";
  const std::string good = wavcaps("inputs/train.wav");
  for (const char* f : {"empty.wav", "corrupt.wav", "truncated.wav"}) {
    auto args = wavcaps_args("audio", out);
    args.insert(args.end(), {good, dir + "/" + f});
    expect_exit2(args, out, f);
    auto c = clap_args("base", "audio", out);
    c.insert(c.end(), {good, dir + "/" + f});
    expect_exit2(c, out, f);
  }
  // A checkpoint of the other family, a truncated one.
  auto args = wavcaps_args("audio", out);
  args[4] = clap("fusion", "weights.pt");
  args.push_back(good);
  expect_exit2(args, out, "LAION-CLAP");
  args = clap_args("fusion", "audio", out);
  args[4] = wavcaps("weights.pt");
  args.push_back(good);
  expect_exit2(args, out, "WavCaps");
  args = wavcaps_args("audio", out);
  args[4] = dir + "/cut.pt";
  args.push_back(good);
  expect_exit2(args, out, "cut.pt");
  // A vocabulary that is not one.
  args = wavcaps_args("text", out);
  args[8] = dir + "/vocab.txt";
  args.insert(args.end(), {"--text", "a dog"});
  expect_exit2(args, out, "vocab.txt");
  args = clap_args("base", "text", out);
  args[8] = dir + "/vocab.json";
  std::ofstream(dir + "/vocab.json", std::ios::binary) << "{\"not\": \"ids\"}";
  args.insert(args.end(), {"--text", "a dog"});
  expect_exit2(args, out, "vocab.json");
  // Text that is not UTF-8.
  args = wavcaps_args("text", out);
  args.insert(args.end(), {"--text", "fine", "--text", "bad \xff\xfe bytes"});
  expect_exit2(args, out, "UTF-8");
  args = clap_args("fusion", "text", out);
  args.insert(args.end(), {"--text", "bad \xc3\x28"});
  expect_exit2(args, out, "UTF-8");
}

TEST(AudioTextEmbedCli, InspectRecognisesBothFamilies) {
  OMNIBIND_REQUIRE_SHARED();
  auto r = testkit::run_cli({"inspect", "--json", wavcaps("weights.pt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j["kind"].get<std::string>().find("WavCaps"), std::string::npos);
  EXPECT_EQ(j["expert"], "wavcaps");
  EXPECT_EQ(j["audio_tower"]["embed_dim"], 16);
  EXPECT_EQ(j["text_tower"]["hidden"], 32);
  EXPECT_EQ(j["embed_dim"], 48);
  for (const std::string kind : {"fusion", "base"}) {
    r = testkit::run_cli({"inspect", "--json", clap(kind, "weights.pt")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    j = nlohmann::json::parse(r.out);
    EXPECT_NE(j["kind"].get<std::string>().find("LAION-CLAP"), std::string::npos) << kind;
    EXPECT_NE(j["omnibind_keys"].get<std::string>().find(kind == "fusion" ? "CLAP_G" : "CLAP_M"), std::string::npos);
    EXPECT_EQ(j["key_prefix"], "module.");
    EXPECT_EQ(j["text_tower"]["pooler"], true);
  }
}
