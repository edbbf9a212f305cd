// End to end through the binary: convert (folded and official layouts) a small random-weight binding
// whose experts are precomputed pools, then embed --model, index + search --model, serve --model.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "bundle_world.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace omnibind;
using testkit::run_cli;
using testkit::kTexts;
using testkit::text_args;
using testkit::world;
using testkit::World;

namespace {

at::Tensor read_key(const std::string& file, const std::string& key) {
  auto st = tensor_io::read_safetensors(file);
  return tensor_io::to_tensor(st.tensors.at(key)).clone();
}

}  // namespace

TEST(BundleCli, ConvertThenEmbedMatchesTheHeadsOnTheExpertRows) {
  const World& w = world();
  const std::string folded = w.convert("folded.bundle");
  const std::string official = w.convert("official.bundle", {"--layout", "official"});
  ASSERT_TRUE(fs::exists(fs::path(folded) / "bundle.json"));
  EXPECT_EQ(json::parse(std::ifstream(fs::path(folded) / "bundle.json"))["heads_layout"], "folded");
  EXPECT_TRUE(fs::exists(fs::path(folded) / "experts/A/A_text.safetensors"));
  for (const std::string& b : {folded, official}) {
    const std::string out = (w.dir / (fs::path(b).filename().string() + ".text.safetensors")).string();
    std::vector<std::string> args = {"embed", "--model", b, "--modality", "text", "--out", out, "--save-experts"};
    for (auto& t : text_args()) args.push_back(t);
    auto r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    at::Tensor u = read_key(out, "text");
    ASSERT_EQ(u.sizes(), (std::vector<int64_t>{5, 20}));
    EXPECT_LT((u - w.expected("text")).abs().max().item<float>(), 1e-6) << b;
    EXPECT_LT((read_key(out, "text/A") - w.text_rows.at("A")).abs().max().item<float>(), 1e-6);
    auto meta = tensor_io::read_safetensors(out).metadata;
    EXPECT_EQ(meta.at("expert"), "omnibind:tiny");
    EXPECT_EQ(json::parse(meta.at("paths"))[1], kTexts[1]);
  }
  const std::string aout = (w.dir / "audio.safetensors").string();
  std::vector<std::string> args = {"embed", "--model", folded, "--modality", "audio", "--out", aout};
  args.insert(args.end(), w.audio_files.begin(), w.audio_files.end());
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT((read_key(aout, "audio") - w.expected("audio")).abs().max().item<float>(), 1e-6);
}

TEST(BundleCli, SearchAndServeWithModel) {
  const World& w = world();
  auto [bundle, idx] = testkit::text_index(w, "search");
  const std::string emb = (w.dir / "search.corpus.safetensors").string();

  // search --model --text: the stored row of the same text ranks first with score ~1.
  auto r = run_cli({"search", idx, "--model", bundle, "--text", kTexts[2], "--k", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json top = json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(top["source"], kTexts[2]);
  EXPECT_NEAR(top["score"].get<double>(), 1.0, 1e-4);
  // An audio query goes through the audio path (its own experts and router) into the same space.
  r = run_cli({"search", idx, "--model", bundle, "--audio", w.audio_files[0], "--k", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Not served: image needs B and IB image pools, which the bundle lacks.
  r = run_cli({"search", idx, "--model", bundle, "--image", w.audio_files[0]});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not embed image"), std::string::npos) << r.err;

  // serve --model: /v1/embeddings returns the same vectors as embed --model.
  testkit::ServeChild srv({"--index", idx, "--model", bundle});
  ASSERT_GT(srv.port, 0) << "server did not start";
  httplib::Client c("127.0.0.1", srv.port);
  c.set_read_timeout(30, 0);
  auto res = c.Post("/v1/embeddings", json{{"input", {kTexts[0], kTexts[3]}}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto body = json::parse(res->body);
  at::Tensor expected = read_key(emb, "text");
  for (int i = 0; i < 2; ++i) {
    auto v = body["data"][i]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(v.size(), 20u);
    at::Tensor got = at::from_blob(v.data(), {20}, at::kFloat).clone();
    EXPECT_LT((got - expected[i == 0 ? 0 : 3]).abs().max().item<float>(), 1e-5);
  }
  res = c.Post("/v1/search", json{{"query", json{{"text", kTexts[4]}}}, {"k", 1}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["results"][0]["source"], kTexts[4]);
  EXPECT_TRUE(srv.stop());
}

TEST(BundleCli, BadModelsAndConversionsAreOneLineExit2) {
  const World& w = world();
  auto one_line = [](const testkit::CliResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  const std::string out = (w.dir / "never.safetensors").string();
  one_line(run_cli({"embed", "--model", (w.dir / "nope").string(), "--modality", "text", "--text", "x", "--out", out}),
           "not a model bundle");
  EXPECT_FALSE(fs::exists(out));
  // A wrong width: the A pool fed as B.
  std::vector<std::string> args = {"convert", "--config", (w.dir / "binding.json").string(), "--heads",
                                   (w.dir / "heads.safetensors").string(), "--out", (w.dir / "bad.bundle").string()};
  args.insert(args.end(), w.expert_args.begin(), w.expert_args.end());
  args.push_back("--expert");
  args.push_back("B=precomputed:" + (w.dir / "A_audio.safetensors").string() + ",modalities=audio");
  one_line(run_cli(args), "gives 24-d embeddings but the heads take 16");
  EXPECT_FALSE(fs::exists(w.dir / "bad.bundle"));
  for (auto& e : fs::directory_iterator(w.dir)) EXPECT_EQ(e.path().string().find(".check-"), std::string::npos);
  // The heads of another binding.
  args[1] = "--preset";
  args[2] = "large";
  one_line(run_cli(args), "projector heads");
  one_line(run_cli({"convert", "--heads", "x.pt", "--out", "y", "--expert", "A"}), "NAME=FAMILY:WEIGHTS");
  // A bundle that does not serve the modality asked for.
  const std::string b = w.convert("text.bundle");
  one_line(run_cli({"embed", "--model", b, "--modality", "image", w.audio_files[0], "--out", out}), "does not embed image");
  one_line(run_cli({"embed", "--model", b, "--modality", "text", "--text", "not in the pool", "--out", out}), "not in the pool");
  EXPECT_FALSE(fs::exists(out));
}
