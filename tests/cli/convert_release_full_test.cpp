// `omnibind convert --preset full --from DIR` (issue 20 item 4): the Large release folder of
// tests/pipeline/release_world.h plus EVA-CLIP-18B as the Hugging Face hub repo BAAI/EVA-CLIP-18B
// (the eva_clip_18b_mini fixture written as safetensors shards with an index, in a hub cache) and a
// Full heads file. The bundle binds EVA_18B to the eva_clip_18b expert, references the index and
// records every shard; `embed --model` gives unit rows for all four modalities; a missing or
// truncated shard is one line naming it, exit 2, nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "experts/eva_clip_18b_hf_shards.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/pipeline/model_bundle.h"
#include "pipeline/release_world.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using testkit::ReleaseWorld;
using testkit::run_cli;
namespace fs = std::filesystem;
using json = nlohmann::json;

// Full at the mini widths: Large's mini binding, EVA_18B at the 18B fixture's width (48) as the
// backbone in the output, the Uni3D spaces as in Full (point, text; image for the router only).
struct FullWorld : ReleaseWorld {
  std::string snapshot;  // the hub snapshot folder holding the shards
  FullWorld(const std::string& tag) : ReleaseWorld(tag) {
    json b = json::parse(testkit::kLargeMiniBinding);
    b["name"] = "full-mini";
    b["backbone_in_output"] = true;
    b["experts"]["EVA_18B"]["dim"] = 48;
    for (const char* u : {"UNI3D_L", "UNI3D_M", "UNI3D_S"}) {
      b["experts"][u]["modalities"] = json({"point", "text"});
      b["experts"][u]["router_only_modalities"] = json({"image"});
    }
    std::ofstream(binding) << b.dump(1);
    tensor_io::write_checkpoint((from / "checkpoints/projs/full.pt").string(),
                                pipeline::random_official_heads(binding::parse_binding_config(b.dump(), "binding"), {.seed = 20}));
    snapshot = (from / "hub/models--BAAI--EVA-CLIP-18B/snapshots/e18b").string();
    fs::create_directories(snapshot);
    testkit::write_eva18b_hf_shards(fx("eva_clip_18b_mini/weights.safetensors"), 64, 32, snapshot, 3);
    configs["EVA_18B.config"] = fx("eva_clip_18b_mini/config.json");
  }
  std::vector<std::string> full_args(const std::string& out) const {
    auto a = convert_args(out);
    a[2] = "full";  // --preset full
    return a;
  }
};

}  // namespace

TEST(ConvertReleaseFull, FindsEvaClip18bShardsInTheHubCacheAndEmbedsEveryModality) {
  OMNIBIND_REQUIRE_SHARED();
  const FullWorld w("convert_release_full");
  const std::string out = (w.dir / "full.bundle").string();
  testkit::CliResult r = run_cli(w.full_args(out));
  ASSERT_EQ(r.exit_code, 0) << "convert --preset full: " << r.err;
  const json m = json::parse(read_file_bytes((fs::path(out) / "bundle.json").string()));
  std::string eva18b;
  for (auto& e : m["experts"])
    if (e["name"] == "EVA_18B") {
      EXPECT_EQ(e["family"], "eva_clip_18b");
      eva18b = e["weights"].get<std::string>();
    }
  EXPECT_EQ(eva18b, w.snapshot + "/model.safetensors.index.json");
  // Every shard's size is recorded with the index (loading checks them).
  int shards = 0;
  for (auto& f : m["files"])
    if (f["path"].get<std::string>().find("-of-00003.safetensors") != std::string::npos) {
      EXPECT_EQ(f["bytes"].get<uint64_t>(), fs::file_size(f["path"].get<std::string>()));
      ++shards;
    }
  EXPECT_EQ(shards, 3);

  // embed --model for all four modalities: unit rows of the backbone's width.
  const std::map<std::string, std::vector<std::string>> inputs = {
      {"image", {ReleaseWorld::fx("eva_clip_18b_mini/inputs/crop_tie_224x227.png"), ReleaseWorld::fx("eva_clip_18b_mini/inputs/train.jpeg")}},
      {"text", {"--text", "a photo of a train", "--text", "a dog barking"}},
      {"audio", {ReleaseWorld::fx("wavcaps_mini/inputs/dog_audio.wav")}},
      {"point", {ReleaseWorld::fx("uni3d_mini/inputs/toilet.npy")}}};
  for (const auto& [modality, args] : inputs) {
    std::vector<std::string> a = {"embed", "--model", out, "--modality", modality, "--precision", "fp32",
                                  "--out", (w.dir / (modality + ".safetensors")).string()};
    a.insert(a.end(), args.begin(), args.end());
    r = run_cli(a);
    ASSERT_EQ(r.exit_code, 0) << modality << ": " << r.err;
    const auto [shape, values] = testkit::read_f32((w.dir / (modality + ".safetensors")).string(), modality);
    ASSERT_EQ(shape.size(), 2u) << modality;
    EXPECT_EQ(shape[1], 48) << modality;
    double n = 0;
    for (int64_t j = 0; j < shape[1]; ++j) n += double(values[j]) * values[j];
    EXPECT_NEAR(n, 1.0, 1e-5) << modality;
  }
}

TEST(ConvertReleaseFull, MissingOrTruncatedShardIsOneLineAndNothingIsWritten) {
  OMNIBIND_REQUIRE_SHARED();
  FullWorld w("convert_release_full_bad");
  const std::string shard = w.snapshot + "/model-00002-of-00003.safetensors";
  const std::string out = (w.dir / "full.bundle").string();
  fs::resize_file(shard, fs::file_size(shard) / 2);
  testkit::expect_exit2(w.full_args(out), out, "model-00002-of-00003.safetensors");
  fs::remove(shard);
  testkit::expect_exit2(w.full_args(out), out, "model-00002-of-00003.safetensors: shard missing");
}

TEST(ConvertReleaseFull, AnotherModelInTheEva18bSlotIsRefusedNamingBoth) {
  OMNIBIND_REQUIRE_SHARED();
  FullWorld w("convert_release_full_wrong");
  fs::remove_all(w.from / "hub/models--BAAI--EVA-CLIP-18B");
  w.place("checkpoints/EVA_CLIP_18B_psz14_s6B.fp16.pt", ReleaseWorld::fx("eva02_clip_mini/weights.pt"));
  const std::string out = (w.dir / "full.bundle").string();
  testkit::expect_exit2(w.full_args(out), out, "is an EVA-CLIP checkpoint, but EVA_18B needs an EVA-CLIP-18B one");
}
