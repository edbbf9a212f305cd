// The released-files table (every space of Base and Large: family, size, files), the search order
// (release layout, Hugging Face cache with refs/main, ORG/NAME, NAME), SHA-256 against the standard
// vectors, the manifest's file records (round trip, size check, old manifests), and the checkpoint
// family detector on the shared mini fixtures.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "omnibind/binding/binding_config.h"
#include "omnibind/experts/checkpoint_family.h"
#include "omnibind/pipeline/bundle_manifest.h"
#include "omnibind/pipeline/file_digest.h"
#include "omnibind/pipeline/release_files.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using namespace omnibind::pipeline;

namespace {

void touch(const fs::path& p, const std::string& content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

}  // namespace

TEST(ReleaseFiles, TableCoversEveryBoundSpaceOfBaseAndLarge) {
  for (const char* preset : {"base", "large", "full"}) {
    const ReleaseTable t = release_table(preset);
    const auto config = binding::preset_config(preset);
    // Every space a modality needs has a row; every row is a bound space with a family, a size and files.
    for (auto& m : binding::all_modalities())
      for (auto& n : config.required_inputs(m)) EXPECT_NE(t.space(n), nullptr) << preset << " " << n;
    for (auto& s : t.spaces) {
      EXPECT_NE(config.find(s.name), nullptr) << s.name;
      EXPECT_FALSE(s.family.empty());
      EXPECT_FALSE(s.size.empty());
      ASSERT_NE(t.file(s.weights), nullptr) << s.name;
      if (!s.bpe.empty()) EXPECT_NE(t.file(s.bpe), nullptr) << s.name;
      for (auto& v : s.vocab) EXPECT_NE(t.file(v), nullptr) << s.name;
    }
    for (auto& f : t.files) {
      EXPECT_FALSE(f.source.empty()) << f.name;
      EXPECT_FALSE(release_search_paths(f).empty()) << f.name;
      EXPECT_FALSE(t.users(f.name).empty()) << f.name;
    }
  }
  const ReleaseTable base = release_table("Base");
  EXPECT_EQ(base.spaces.size(), 6u);
  EXPECT_EQ(base.file("heads")->paths.front(), "checkpoints/projs/base.pt");
  EXPECT_EQ(base.space("UNI3D_L")->image_text_from, "EVA_E14p");
  EXPECT_EQ(base.users("EVA_E14p"), (std::vector<std::string>{"EVA_E14p", "UNI3D_L"}));
  const ReleaseTable large = release_table("large");
  EXPECT_EQ(large.spaces.size(), 13u);
  EXPECT_EQ(large.space("CLAP_G")->size, "fusion");
  EXPECT_EQ(large.space("CLAP_M")->size, "base");
  EXPECT_EQ(large.space("SigLip_400M_384")->size, "so400m14");
  EXPECT_EQ(large.space("WAVCAPS_FT_clo")->size, "ft_clo");
  EXPECT_EQ(large.file("CLAP_G")->paths,
            (std::vector<std::string>{"checkpoints/clap/630k-fusion-best.pt", "checkpoints/clap/630k_clap_fullset_fusion.pt"}));
  EXPECT_EQ(large.file("DFN_H14")->hub_repos.front(), "apple/DFN5B-CLIP-ViT-H-14");
  const auto names = large.file_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "UNI3D_M.config"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "SigLip_384.spiece"), names.end());
  // Full = Large + EVA_18B (EVA-CLIP-18B: the .fp16.pt or the hub shards).
  const ReleaseTable full = release_table("Full");
  EXPECT_EQ(full.spaces.size(), 14u);
  EXPECT_EQ(full.space("EVA_18B")->family, "eva_clip_18b");
  EXPECT_EQ(full.space("EVA_18B")->bpe, "bpe");
  EXPECT_EQ(full.file("EVA_18B")->hub_repos.front(), "BAAI/EVA-CLIP-18B");
  EXPECT_EQ(full.file("heads")->paths.front(), "checkpoints/projs/full.pt");
  EXPECT_EQ(large.space("EVA_18B"), nullptr);  // Large never runs EVA-CLIP-18B (backbone width only)
  EXPECT_NE(testkit::input_error_of([] { release_table("huge"); }).find("base, large and full"), std::string::npos);
}

TEST(ReleaseFiles, SearchOrder) {
  const fs::path d = testkit::make_temp_dir("release_search");
  const ReleaseTable t = release_table("large");
  const ReleaseFile& clap = *t.file("CLAP_G");
  EXPECT_EQ(find_release_file(d, clap), "");
  // The README's name is accepted; paths.py's name wins when both exist.
  touch(d / "checkpoints/clap/630k_clap_fullset_fusion.pt");
  EXPECT_EQ(find_release_file(d, clap), (d / "checkpoints/clap/630k_clap_fullset_fusion.pt").string());
  touch(d / "checkpoints/clap/630k-fusion-best.pt");
  EXPECT_EQ(find_release_file(d, clap), (d / "checkpoints/clap/630k-fusion-best.pt").string());

  // Hub files: NAME/F < ORG/NAME/F < hub/ cache < cache at the top.
  const ReleaseFile& siglip = *t.file("SigLip_384");
  touch(d / "siglip-large-patch16-384/model.safetensors");
  EXPECT_EQ(find_release_file(d, siglip), (d / "siglip-large-patch16-384/model.safetensors").string());
  touch(d / "google/siglip-large-patch16-384/model.safetensors");
  EXPECT_EQ(find_release_file(d, siglip), (d / "google/siglip-large-patch16-384/model.safetensors").string());
  const fs::path cache = d / "hub/models--google--siglip-large-patch16-384";
  touch(cache / "snapshots/aaa/model.safetensors");
  EXPECT_EQ(find_release_file(d, siglip), (cache / "snapshots/aaa/model.safetensors").string());
  // Two snapshots: ambiguous until refs/main names one.
  touch(cache / "snapshots/bbb/model.safetensors");
  EXPECT_NE(testkit::input_error_of([&] { find_release_file(d, siglip); }).find("refs/main names none"), std::string::npos);
  touch(cache / "refs/main", "bbb\n");
  EXPECT_EQ(find_release_file(d, siglip), (cache / "snapshots/bbb/model.safetensors").string());
  touch(d / "models--google--siglip-large-patch16-384/snapshots/ccc/model.safetensors");
  EXPECT_EQ(find_release_file(d, siglip), (d / "models--google--siglip-large-patch16-384/snapshots/ccc/model.safetensors").string());
  // Repos without an organisation, and their newer ORG/NAME spelling.
  touch(d / "hub/models--google-bert--bert-base-uncased/snapshots/x/vocab.txt");
  EXPECT_EQ(find_release_file(d, *t.file("bert_vocab")), (d / "hub/models--google-bert--bert-base-uncased/snapshots/x/vocab.txt").string());
  touch(d / "models--bert-base-uncased/snapshots/y/vocab.txt");
  EXPECT_EQ(find_release_file(d, *t.file("bert_vocab")), (d / "models--bert-base-uncased/snapshots/y/vocab.txt").string());

  EXPECT_EQ(parse_file_override("heads=/a/b=c.pt"), (std::pair<std::string, std::string>{"heads", "/a/b=c.pt"}));
  EXPECT_NE(testkit::input_error_of([] { parse_file_override("heads"); }).find("NAME=PATH"), std::string::npos);
}

TEST(ReleaseFiles, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Streaming in odd pieces gives the same digest.
  Sha256 s;
  const std::string msg(1000000, 'a');
  for (size_t i = 0; i < msg.size(); i += 7) s.update(msg.data() + i, std::min<size_t>(7, msg.size() - i));
  EXPECT_EQ(s.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const fs::path d = testkit::make_temp_dir("sha256");
  touch(d / "abc", "abc");
  EXPECT_EQ(sha256_file((d / "abc").string()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ReleaseFiles, ManifestFileRecords) {
  const fs::path d = testkit::make_temp_dir("manifest_records");
  const std::string base = R"({"format": "omnibind-bundle", "version": 1, "binding": {"preset": "base"},
    "experts": [{"name": "IB", "family": "imagebind", "weights": "w.pt"}])";
  // Old manifests (no "files") parse as before.
  BundleManifest m = parse_bundle_manifest(base + "}", "old");
  EXPECT_TRUE(m.files.empty());
  touch(d / "w.pt", "12345");
  m.files.push_back({"w.pt", 5, sha256_hex("12345")});
  const BundleManifest again = parse_bundle_manifest(bundle_manifest_to_json(m), "again");
  ASSERT_EQ(again.files.size(), 1u);
  EXPECT_EQ(again.files[0].bytes, 5u);
  EXPECT_EQ(again.files[0].sha256, sha256_hex("12345"));
  check_recorded_sizes(d, again, "bundle.json");
  touch(d / "w.pt", "1234");
  const std::string err = testkit::input_error_of([&] { check_recorded_sizes(d, again, "bundle.json"); });
  EXPECT_NE(err.find("w.pt: 4 bytes, but bundle.json recorded 5"), std::string::npos) << err;
  fs::remove(d / "w.pt");
  EXPECT_NE(testkit::input_error_of([&] { check_recorded_sizes(d, again, "bundle.json"); }).find("missing"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] {
              parse_bundle_manifest(base + R"(, "files": [{"path": "w.pt", "bytes": 5, "sha256": "XYZ"}]})", "bad");
            }).find("files[0].sha256"),
            std::string::npos);
}

TEST(ReleaseFiles, DetectsEachFamilyFromItsKeys) {
  if (testkit::shared_dir().empty()) GTEST_SKIP() << "SKIPPED: ../shared (fixtures and data) is absent";
  auto detect = [](const std::string& rel) {
    return experts::detect_checkpoint_family(tensor_io::load_checkpoint(testkit::shared_path("fixtures/" + rel)));
  };
  EXPECT_EQ(detect("wavcaps_mini/weights.pt").family, "wavcaps");
  EXPECT_EQ(detect("clap_mini/fusion/weights.pt").size, "fusion");
  EXPECT_EQ(detect("clap_mini/base/weights.pt").size, "base");
  EXPECT_EQ(detect("clap_mini/base/weights.pt").family, "clap");
  EXPECT_EQ(detect("eva02_clip_mini/weights.pt").family, "eva_clip");
  EXPECT_EQ(detect("eva_clip_18b_mini/weights.safetensors").family, "eva_clip_18b");
  EXPECT_EQ(detect("eva_clip_18b_mini/weights.safetensors").phrase, "an EVA-CLIP-18B");
  EXPECT_EQ(detect("dfn_clip_mini/weights.pt").family, "open_clip");
  EXPECT_EQ(detect("siglip_mini/so400m14/weights.safetensors").family, "siglip");
  EXPECT_EQ(detect("siglip_mini/so400m14/weights.safetensors").size, "");  // custom widths
  EXPECT_EQ(detect("uni3d_mini/g_mini/weights.pt").family, "uni3d");
  EXPECT_EQ(detect("imagebind_mini/weights.pt").family, "imagebind");
  EXPECT_EQ(detect("omnibind_router_mini/base.pt").family, "omnibind-heads");
  EXPECT_EQ(detect("clap_mini/fusion/weights.pt").phrase, "a LAION-CLAP fusion");
  EXPECT_EQ(experts::family_phrase("wavcaps"), "a WavCaps HTSAT-BERT");
  EXPECT_EQ(experts::family_modalities("uni3d"), (std::vector<std::string>{"point"}));
}
