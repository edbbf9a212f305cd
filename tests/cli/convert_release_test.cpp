// `omnibind convert --preset large --from DIR` on a release folder assembled from the shared mini
// fixtures (tests/pipeline/release_world.h): finds everything, shares EVA between EVA_E14p and the
// Uni3D spaces' image/text, records sizes and sha256; missing files listed at once, a wrong family
// or a truncated file refused with one line and nothing written; `inspect` of the bundle.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/pipeline/file_digest.h"
#include "omnibind/pipeline/model_bundle.h"
#include "pipeline/release_world.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace omnibind;
using testkit::ReleaseWorld;
using testkit::run_cli;

namespace {

#define REQUIRE_SHARED() \
  if (testkit::shared_dir().empty()) GTEST_SKIP() << "SKIPPED: ../shared (fixtures and data) is absent"

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

json manifest(const std::string& bundle) { return json::parse(read_file_bytes(bundle + "/bundle.json")); }

}  // namespace

TEST(ConvertRelease, FindsEveryFileAndSharesEvaWithTheUni3dSpaces) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_ok");
  const std::string out = (w.dir / "large.bundle").string();
  auto r = run_cli(w.convert_args(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json m = manifest(out);
  // 13 spaces + the three Uni3D spaces' image/text entries on EVA's files.
  ASSERT_EQ(m["experts"].size(), 16u) << m.dump(1);
  std::map<std::string, std::vector<json>> by_name;
  for (auto& e : m["experts"]) by_name[e["name"]].push_back(e);
  for (const char* u : {"UNI3D_L", "UNI3D_M", "UNI3D_S"}) {
    ASSERT_EQ(by_name[u].size(), 2u) << u;
    EXPECT_EQ(by_name[u][0]["family"], "uni3d");
    EXPECT_EQ(by_name[u][0]["modalities"], json({"point"}));
    EXPECT_EQ(by_name[u][1]["family"], "eva_clip");
    EXPECT_EQ(by_name[u][1]["modalities"], json({"image", "text"}));
    EXPECT_EQ(by_name[u][1]["weights"], by_name["EVA_E14p"][0]["weights"]);
  }
  // Found where each layout puts it; referenced by absolute path (nothing copied).
  auto weights = [&](const std::string& n) { return by_name[n][0]["weights"].get<std::string>(); };
  EXPECT_EQ(weights("CLAP_G"), (w.from / "checkpoints/clap/630k_clap_fullset_fusion.pt").string());
  EXPECT_EQ(weights("DFN_H14"),
            (w.from / "hub/models--apple--DFN5B-CLIP-ViT-H-14/snapshots/f00d/open_clip_pytorch_model.bin").string());
  EXPECT_EQ(weights("SigLip_384"), (w.from / "google/siglip-large-patch16-384/model.safetensors").string());
  EXPECT_EQ(weights("SigLip_400M_384"), (w.from / "siglip-so400m-patch14-384/model.safetensors").string());
  EXPECT_EQ(weights("IB"), (w.from / ".checkpoints/imagebind_huge.pth").string());
  EXPECT_EQ(by_name["WAVCAPS_PT"][0]["vocab"][0], (w.from / "models--bert-base-uncased/snapshots/0a1b/vocab.txt").string());
  EXPECT_EQ(by_name["CLAP_M"][0]["size"], "base");
  EXPECT_FALSE(fs::exists(fs::path(out) / "experts"));
  // Sizes and sha256 of every file the manifest names.
  std::set<std::string> recorded;
  for (auto& f : m["files"]) {
    const std::string p = f["path"];
    const fs::path disk = fs::path(p).is_absolute() ? fs::path(p) : fs::path(out) / p;
    EXPECT_EQ(f["bytes"].get<uint64_t>(), fs::file_size(disk)) << p;
    EXPECT_EQ(f["sha256"], pipeline::sha256_file(disk.string())) << p;
    recorded.insert(p);
  }
  EXPECT_TRUE(recorded.count("heads.safetensors"));
  for (auto& e : m["experts"]) EXPECT_TRUE(recorded.count(e["weights"])) << e["weights"];

  // One EVA instance serves EVA_E14p and the Uni3D spaces' image and text.
  auto b = pipeline::ModelBundle::load(out);
  EXPECT_EQ(b.modalities().size(), 4u);
  const auto* eva = b.expert_for("EVA_E14p", experts::Modality::Image);
  ASSERT_NE(eva, nullptr);
  for (const char* u : {"UNI3D_L", "UNI3D_M", "UNI3D_S"}) {
    EXPECT_EQ(b.expert_for(u, experts::Modality::Image), eva) << u;
    EXPECT_EQ(b.expert_for(u, experts::Modality::Text), eva) << u;
    EXPECT_NE(b.expert_for(u, experts::Modality::Point), eva) << u;
  }
  auto x = b.expert_embeddings(experts::Modality::Text, {experts::MediaInput::from_text("a dog barking")});
  EXPECT_TRUE(at::equal(x.at("UNI3D_L"), x.at("EVA_E14p")));
}

TEST(ConvertRelease, ListsEveryMissingFileAtOnce) {
  REQUIRE_SHARED();
  const std::string empty = testkit::make_temp_dir("convert_release_empty");
  const std::string out = empty + "/b.bundle";
  auto r = run_cli({"convert", "--preset", "base", "--from", empty, "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(out));
  // heads, 3 WavCaps, EVA, Uni3D-L, ImageBind, the BPE and the BERT vocabulary: one line each + a summary.
  EXPECT_EQ(lines(r.err), 10) << r.err;
  for (const char* needle :
       {"checkpoints/projs/base.pt", "checkpoints/wavcaps/HTSAT-BERT-PT.pt", "checkpoints/wavcaps/HTSAT-BERT-FT-AudioCaps.pt",
        "checkpoints/wavcaps/HTSAT-BERT-FT-Clotho.pt", "checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt",
        "checkpoints/uni3d-g/lvis/model.pt", ".checkpoints/imagebind_huge.pth", "dl.fbaipublicfiles.com/omnivore",
        "bpe/bpe_simple_vocab_16e6.txt.gz", "bert-base-uncased", "needed by WAVCAPS_PT, WAVCAPS_FT_aud, WAVCAPS_FT_clo",
        "needed by EVA_E14p, UNI3D_L, IB", "--file WAVCAPS_PT=PATH"})
    EXPECT_NE(r.err.find(needle), std::string::npos) << needle << "\n" << r.err;

  // In a full folder, one file gone: exactly that one line.
  ReleaseWorld w("convert_release_missing");
  fs::remove(w.from / "checkpoints/uni3d-g/mnet40/model.pt");
  r = run_cli(w.convert_args(out));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 2) << r.err;
  EXPECT_NE(r.err.find("missing checkpoints/uni3d-g/mnet40/model.pt (UNI3D_M weights; from Uni3D release"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(ConvertRelease, RefusesTheWrongExpertInASlotNamingBoth) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_family");
  const std::string out = (w.dir / "b.bundle").string();
  w.place("checkpoints/wavcaps/HTSAT-BERT-PT.pt", ReleaseWorld::fx("clap_mini/fusion/weights.pt"));
  testkit::expect_exit2(w.convert_args(out), out,
                        "checkpoints/wavcaps/HTSAT-BERT-PT.pt is a LAION-CLAP fusion checkpoint, but WAVCAPS_PT needs a "
                        "WavCaps HTSAT-BERT one");
  w.place("checkpoints/wavcaps/HTSAT-BERT-PT.pt", ReleaseWorld::fx("wavcaps_mini/weights.pt"));
  w.place("checkpoints/clap/630k_clap_fullset_fusion.pt", ReleaseWorld::fx("clap_mini/base/weights.pt"));
  testkit::expect_exit2(w.convert_args(out), out,
                        "checkpoints/clap/630k_clap_fullset_fusion.pt is a LAION-CLAP (no fusion) checkpoint, but CLAP_G "
                        "needs a LAION-CLAP fusion one");
  w.place("checkpoints/clap/630k_clap_fullset_fusion.pt", ReleaseWorld::fx("clap_mini/fusion/weights.pt"));
  w.place("checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt", ReleaseWorld::fx("dfn_clip_mini/weights.pt"));
  testkit::expect_exit2(w.convert_args(out), out,
                        "checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt is an open_clip CLIP checkpoint, but EVA_E14p needs "
                        "an EVA-CLIP one");
  w.place("checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt", ReleaseWorld::fx("eva02_clip_mini/weights.pt"));
  w.place("checkpoints/projs/large.pt", ReleaseWorld::fx("imagebind_mini/weights.pt"));
  testkit::expect_exit2(w.convert_args(out), out,
                        "checkpoints/projs/large.pt is an ImageBind checkpoint, but the large heads slot needs an OmniBind "
                        "heads/routers one");
}

TEST(ConvertRelease, RefusesATruncatedCheckpointInOneLine) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_truncated");
  const std::string out = (w.dir / "b.bundle").string();
  for (const char* src : {"eva02_clip_mini/weights.pt", "eva02_clip_mini/weights.safetensors"}) {
    const std::string bytes = read_file_bytes(ReleaseWorld::fx(src));
    const fs::path p = w.from / "checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt";
    fs::remove(p);
    std::ofstream(p, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    testkit::expect_exit2(w.convert_args(out), out, "checkpoints/EVA02_CLIP_E_psz14_plus_s9B.pt: cannot be read as a checkpoint, truncated");
  }
}

TEST(ConvertRelease, FileOverridesTheSearchAndUnknownNamesAreRefused) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_override");
  const std::string out = (w.dir / "b.bundle").string();
  fs::remove(w.from / "checkpoints/wavcaps/HTSAT-BERT-FT-Clotho.pt");
  const std::string elsewhere = (w.dir / "my-clotho.pt").string();
  fs::create_symlink(ReleaseWorld::fx("wavcaps_mini/weights.pt"), elsewhere);
  auto r = run_cli(w.convert_args(out, {"--file", "WAVCAPS_FT_clo=" + elsewhere, "--no-check"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json m = manifest(out);
  for (auto& e : m["experts"])
    if (e["name"] == "WAVCAPS_FT_clo") EXPECT_EQ(e["weights"], elsewhere);
  testkit::expect_exit2(w.convert_args(out + "2", {"--file", "WAVCAPS_CLO=" + elsewhere}), out + "2",
                        "'WAVCAPS_CLO' is not a file of the large release (known: heads, WAVCAPS_PT");
}

TEST(ConvertRelease, LinkAndCopyPutFilesInsideTheBundle) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_link");
  // Real files instead of symlinks to ../shared (hard links need one file system).
  std::vector<fs::path> links;
  for (auto& e : fs::recursive_directory_iterator(w.from))
    if (e.is_symlink()) links.push_back(e.path());
  for (auto& l : links) {
    const fs::path target = fs::canonical(l);
    fs::remove(l);
    fs::copy_file(target, l);
  }
  for (const char* mode : {"--link", "--copy"}) {
    const std::string out = (w.dir / (std::string(mode + 2) + ".bundle")).string();
    auto r = run_cli(w.convert_args(out, {mode, "--no-check"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path uni3d = fs::path(out) / "experts/UNI3D_L/model.pt";  // a real file in the world (not a symlink)
    ASSERT_TRUE(fs::is_regular_file(uni3d)) << mode;
    struct stat a {}, b {};
    ::stat(uni3d.c_str(), &a);
    ::stat((w.from / "checkpoints/uni3d-g/lvis/model.pt").c_str(), &b);
    EXPECT_EQ(a.st_ino == b.st_ino, std::string(mode) == "--link") << mode;
    const json m = manifest(out);
    for (auto& e : m["experts"]) EXPECT_FALSE(fs::path(e["weights"].get<std::string>()).is_absolute()) << mode;
    // EVA placed once, shared by the EVA_E14p and Uni3D entries.
    std::set<std::string> eva;
    for (auto& e : m["experts"])
      if (e["family"] == "eva_clip") eva.insert(e["weights"]);
    EXPECT_EQ(eva.size(), 1u) << mode;
  }
}

TEST(ConvertRelease, LoadingChecksRecordedSizesAndInspectVerifies) {
  REQUIRE_SHARED();
  ReleaseWorld w("convert_release_sizes");
  const std::string out = (w.dir / "b.bundle").string();
  auto r = run_cli(w.convert_args(out, {"--no-check"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = run_cli({"inspect", out, "--json", "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["binding"], "large-mini (bundle.json)");
  EXPECT_EQ(j["precision"], "fp32");
  EXPECT_EQ(j["spaces"].size(), 16u);
  for (auto& f : j["files"]) EXPECT_EQ(f["status"], "sha256 ok") << f.dump();
  for (const char* mod : {"audio", "image", "point", "text"}) {
    ASSERT_TRUE(j["memory"][mod]["served"].get<bool>()) << mod;
    EXPECT_GT(j["memory"][mod]["bytes"].get<int64_t>(), 0) << mod;
  }
  // Image: DFN, EVA (once for EVA_E14p and the three Uni3D slots), two SigLIPs, ImageBind.
  EXPECT_EQ(j["memory"]["image"]["experts"], 5);
  EXPECT_EQ(j["memory"]["point"]["experts"], 3);
  EXPECT_NE(j["memory_note"].get<std::string>().find("estimate from tensor sizes"), std::string::npos);
  r = run_cli({"inspect", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle : {"binding:   large-mini", "UNI3D_L", "eva_clip", "size ok", "estimate from tensor sizes", "point"})
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;

  // A bundle from before the records ("files" absent) loads and inspects as before.
  {
    const std::string old_bundle = (w.dir / "old.bundle").string();
    fs::copy(out, old_bundle, fs::copy_options::recursive);
    json om = manifest(old_bundle);
    om.erase("files");
    std::ofstream(old_bundle + "/bundle.json") << om.dump(2);
    EXPECT_EQ(testkit::input_error_of([&] { pipeline::ModelBundle::load(old_bundle); }), "");
    r = run_cli({"inspect", old_bundle, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (auto& f : json::parse(r.out)["files"]) EXPECT_EQ(f["status"], "present (not recorded)") << f.dump();
  }

  // A referenced file replaced by one of another size: loading refuses it in one line.
  w.place("models--bert-base-uncased/snapshots/0a1b/vocab.txt", ReleaseWorld::fx("wavcaps_mini/bert-base-uncased-vocab.txt"));
  const std::string err = testkit::input_error_of([&] { pipeline::ModelBundle::load(out); });
  EXPECT_NE(err.find("vocab.txt: "), std::string::npos) << err;
  EXPECT_NE(err.find("bytes, but"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  r = run_cli({"inspect", out, "--verify"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("size differs"), std::string::npos) << r.out;
}
