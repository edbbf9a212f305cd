// End-to-end tests of `omnibind fuse` and `omnibind inspect` (the binary, run as a user would).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;

namespace {

std::string fixture(const std::string& name) { return testkit::shared_path("fixtures/omnibind_router_mini/" + name); }

std::vector<std::pair<std::string, at::Tensor>> load_all(const std::string& path) {
  auto f = tensor_io::read_safetensors(path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& n : f.tensors.names()) out.emplace_back(n, tensor_io::to_tensor(f.tensors.at(n)).clone());
  return out;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// A failing run: exit 2, exactly one line on stderr containing `needle`, no output file.
void expect_rejected(const std::vector<std::string>& args, const std::string& out, const std::string& needle) {
  auto r = testkit::run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err << "expected to mention: " << needle;
  EXPECT_FALSE(fs::exists(out)) << "a failed run must not leave " << out;
  for (auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary left behind: " << e.path();
}

}  // namespace

class FuseParity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(FuseParity, MatchesReferenceOutputs) {
  OMNIBIND_REQUIRE_SHARED();
  auto [preset, ext] = GetParam();
  auto dir = testkit::make_temp_dir("fuse");
  auto out = dir + "/unified.safetensors";
  auto r = testkit::run_cli({"fuse", "--head", fixture(preset + ext), "--preset", preset, "--in",
                             fixture(preset + "_inputs.safetensors"), "--out", out, "--batch", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = tensor_io::read_safetensors(out);
  auto expected = tensor_io::read_safetensors(fixture(preset + "_outputs.safetensors"));
  ASSERT_EQ(got.tensors.size(), 4u);
  for (auto& m : expected.tensors.names()) {
    double diff = (tensor_io::to_tensor(got.tensors.at(m)) - tensor_io::to_tensor(expected.tensors.at(m))).abs().max().item<double>();
    EXPECT_LE(diff, 1e-5) << preset << ext << " " << m;
  }
  EXPECT_EQ(got.metadata.at("preset"), preset);
}

INSTANTIATE_TEST_SUITE_P(PresetsAndFormats, FuseParity,
                         ::testing::Combine(::testing::Values("base", "large", "full"),
                                            ::testing::Values(".pt", ".safetensors")));

TEST(Fuse, OneModalityAndBf16) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = testkit::make_temp_dir("fuse");
  auto out = dir + "/text.safetensors";
  auto r = testkit::run_cli({"fuse", "--head", fixture("large.pt"), "--preset", "large", "--in",
                             fixture("large_inputs.safetensors"), "--out", out, "--modality", "text", "--precision",
                             "bf16", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = tensor_io::read_safetensors(out);
  ASSERT_EQ(got.tensors.names(), std::vector<std::string>{"text"});
  auto expected = tensor_io::to_tensor(tensor_io::read_safetensors(fixture("large_outputs.safetensors")).tensors.at("text"));
  double cos = (tensor_io::to_tensor(got.tensors.at("text")) * expected).sum(1).min().item<double>();
  EXPECT_GE(cos, 0.999);
}

TEST(Inspect, DetectsEveryPreset) {
  OMNIBIND_REQUIRE_SHARED();
  for (std::string preset : {"base", "large", "full"}) {
    auto r = testkit::run_cli({"inspect", fixture(preset + ".pt"), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"preset\": \"" + preset + "\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"unified_dim\": 48"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"heads_per_space\": 7"), std::string::npos) << r.out;
  }
}

TEST(Cli, HelpAndVersion) {
  auto r = testkit::run_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("omnibind"), std::string::npos);
  for (std::string verb : {"fuse", "inspect"}) {
    auto h = testkit::run_cli({verb, "--help"});
    EXPECT_EQ(h.exit_code, 0) << verb;
    EXPECT_NE(h.out.find("--"), std::string::npos) << verb;
  }
  auto bad = testkit::run_cli({"fuse", "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
}

class FuseBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testkit::shared_dir().empty()) GTEST_SKIP() << "SKIPPED: ../shared (fixtures and data) is absent";
    dir = testkit::make_temp_dir("fusebad");
    out = dir + "/out.safetensors";
  }
  std::vector<std::string> fuse(const std::string& head, const std::string& preset, const std::string& in) {
    return {"fuse", "--head", head, "--preset", preset, "--in", in, "--out", out};
  }
  std::string write_inputs(const std::string& name, std::vector<std::pair<std::string, at::Tensor>> ts) {
    auto p = dir + "/" + name;
    tensor_io::write_tensors(p, ts);
    return p;
  }
  std::string write_bytes(const std::string& name, const std::string& bytes) {
    auto p = dir + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string dir, out;
};

TEST_F(FuseBadInput, TruncatedSafetensorsHead) {
  auto bytes = read_file_bytes(fixture("large.safetensors"));
  auto head = write_bytes("trunc.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_rejected(fuse(head, "large", fixture("large_inputs.safetensors")), out, "trunc.safetensors");
}

TEST_F(FuseBadInput, CorruptZipHead) {
  auto bytes = read_file_bytes(fixture("large.pt"));
  auto head = write_bytes("corrupt.pt", bytes.substr(0, bytes.size() - 200));
  expect_rejected(fuse(head, "large", fixture("large_inputs.safetensors")), out, "corrupt.pt");
}

TEST_F(FuseBadInput, PickleWithForbiddenGlobal) {
  // A legacy-format pickle whose first object calls os.system("ls").
  auto head = write_bytes("evil.pt", std::string("\x80\x02" "cos\nsystem\n(X\x02\x00\x00\x00lstR.", 23));
  expect_rejected(fuse(head, "large", fixture("large_inputs.safetensors")), out, "os");
}

TEST_F(FuseBadInput, TruncatedInput) {
  auto bytes = read_file_bytes(fixture("large_inputs.safetensors"));
  auto in = write_bytes("in.safetensors", bytes.substr(0, bytes.size() - 100));
  expect_rejected(fuse(fixture("large.pt"), "large", in), out, "in.safetensors");
}

TEST_F(FuseBadInput, MissingExpertKey) {
  auto ts = load_all(fixture("large_inputs.safetensors"));
  std::erase_if(ts, [](auto& p) { return p.first == "audio/WAVCAPS_PT"; });
  expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("in.safetensors", ts)), out, "audio/WAVCAPS_PT");
}

TEST_F(FuseBadInput, WrongEmbeddingWidth) {
  auto ts = load_all(fixture("large_inputs.safetensors"));
  for (auto& [k, t] : ts)
    if (k == "image/DFN_H14") t = at::randn({5, 65});
  expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("in.safetensors", ts)), out, "image/DFN_H14");
}

TEST_F(FuseBadInput, NanAndInfRows) {
  for (double bad : {std::nan(""), double(INFINITY)}) {
    auto ts = load_all(fixture("large_inputs.safetensors"));
    for (auto& [k, t] : ts)
      if (k == "text/IB") t[3][7] = bad;
    expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("in.safetensors", ts)), out, "row 3");
  }
}

TEST_F(FuseBadInput, EmptyInput) {
  expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("none.safetensors", {})), out, "no tensors");
  auto ts = load_all(fixture("large_inputs.safetensors"));
  for (auto& [k, t] : ts) t = t.narrow(0, 0, 0).contiguous();
  expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("zero.safetensors", ts)), out, "no rows");
}

TEST_F(FuseBadInput, UnknownPreset) {
  expect_rejected(fuse(fixture("large.pt"), "huge", fixture("large_inputs.safetensors")), out, "unknown preset 'huge'");
}

TEST_F(FuseBadInput, CheckpointOfAnotherPreset) {
  expect_rejected(fuse(fixture("large.pt"), "base", fixture("large_inputs.safetensors")), out, "'large' checkpoint");
  expect_rejected(fuse(fixture("full.pt"), "large", fixture("large_inputs.safetensors")), out, "'full' checkpoint");
}

TEST_F(FuseBadInput, MissingFiles) {
  expect_rejected(fuse(dir + "/nope.pt", "large", fixture("large_inputs.safetensors")), out, "nope.pt");
  expect_rejected(fuse(fixture("large.pt"), "large", dir + "/nope.safetensors"), out, "nope.safetensors");
}

TEST_F(FuseBadInput, MalformedInputKey) {
  auto ts = load_all(fixture("large_inputs.safetensors"));
  ts.emplace_back("WAVCAPS_PT", at::randn({5, 64}));
  expect_rejected(fuse(fixture("large.pt"), "large", write_inputs("in.safetensors", ts)), out, "'WAVCAPS_PT'");
}
