// embed --model through the binary: --keep-experts (and its old spelling), rows in input order with
// and without the overlap (--prefetch 0), mixed modalities refused before anything is embedded, a
// failing input named with nothing written, --progress showing items/s.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bundle_world.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using testkit::run_cli;
using testkit::world;
using testkit::World;

namespace {

at::Tensor read_key(const std::string& file, const std::string& key) {
  auto st = tensor_io::read_safetensors(file);
  return tensor_io::to_tensor(st.tensors.at(key)).clone();
}

const std::string& runtime_bundle() {
  static std::string b = world().convert("runtime.bundle");
  return b;
}

}  // namespace

TEST(BundleRuntimeCli, KeepExpertsAndInputOrderWithAndWithoutOverlap) {
  const World& w = world();
  const std::string b = runtime_bundle();
  // Inputs in another order than the pool's: rows follow the command line.
  const std::vector<int> order = {2, 0, 1};
  at::Tensor want = w.expected("audio").index_select(0, at::tensor(std::vector<int64_t>{2, 0, 1}));
  at::Tensor first;
  for (const std::string flag : {"--keep-experts", "--save-experts"}) {
    for (const std::string prefetch : {"0", "2"}) {
      const std::string out = (w.dir / ("rt_" + flag.substr(2) + prefetch + ".safetensors")).string();
      std::vector<std::string> args = {"embed", "--model", b, "--modality", "audio", "--out", out, flag, "--batch", "2",
                                       "--prefetch", prefetch, "--progress"};
      for (int i : order) args.push_back(w.audio_files[static_cast<size_t>(i)]);
      auto r = run_cli(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.err.find("3/3"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("items/s"), std::string::npos) << r.err;
      at::Tensor u = read_key(out, "audio");
      EXPECT_LT((u - want).abs().max().item<float>(), 1e-6) << flag << " " << prefetch;
      for (auto& n : {"A", "IB"}) {
        at::Tensor x = read_key(out, std::string("audio/") + n);
        at::Tensor rows = w.audio_rows.at(n).index_select(0, at::tensor(std::vector<int64_t>{2, 0, 1}));
        EXPECT_LT((x - rows).abs().max().item<float>(), 1e-6) << n;
      }
      auto meta = tensor_io::read_safetensors(out).metadata;
      EXPECT_EQ(nlohmann::json::parse(meta.at("paths"))[0], w.audio_files[2]);
      if (!first.defined()) first = u;
      EXPECT_TRUE(at::equal(u, first));  // the overlap changes nothing
    }
  }
}

TEST(BundleRuntimeCli, MixedModalitiesAreRefusedBeforeEmbedding) {
  const World& w = world();
  const std::string b = runtime_bundle();
  const fs::path d = testkit::make_temp_dir("rt_mixed");
  const std::string jpg = (d / "photo.jpg").string();
  std::ofstream(jpg, std::ios::binary) << std::string("\xFF\xD8\xFF\xE0", 4) << "JFIF not a full image";
  const std::string out = (d / "out.safetensors").string();
  // An image among audio clips: one line naming it and both modalities, exit 2, nothing written.
  testkit::expect_exit2({"embed", "--model", b, "--modality", "audio", w.audio_files[0], jpg, "--out", out}, out,
                        jpg + ": is an image file, not audio (--modality audio)");
  // By content even when the name lies, and for texts read from files.
  const std::string lying = (d / "clip.wav").string();
  std::ofstream(lying, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << "rest";
  testkit::expect_exit2({"embed", "--model", b, "--modality", "audio", lying, "--out", out}, out, "is an image file, not audio");
  testkit::expect_exit2({"embed", "--model", b, "--modality", "text", w.audio_files[1], "--out", out}, out,
                        "is an audio file, not text");
  // The same rule with --expert.
  testkit::expect_exit2({"embed", "--expert", "precomputed", "--weights", (w.dir / "A_audio.safetensors").string(),
                         "--modality", "audio", w.audio_files[0], jpg, "--out", out}, out,
                        "is an image file, not audio");
}

TEST(BundleRuntimeCli, AFailingInputIsNamedAndNothingIsWritten) {
  const World& w = world();
  const std::string b = runtime_bundle();
  const fs::path d = testkit::make_temp_dir("rt_fail");
  const std::string stranger = (d / "stranger.wav").string();  // not in the pools
  std::ofstream(stranger) << "some other clip";
  const std::string out = (d / "out.safetensors").string();
  for (const std::string prefetch : {"0", "2"})
    testkit::expect_exit2({"embed", "--model", b, "--modality", "audio", w.audio_files[0], w.audio_files[1], w.audio_files[2],
                           stranger, "--batch", "1", "--prefetch", prefetch, "--out", out}, out,
                          stranger + ": not in the pool");
}
