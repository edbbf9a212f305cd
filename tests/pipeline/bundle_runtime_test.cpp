// The bundle runtime: lazy experts (a modality builds only its experts; a broken expert file fails
// only the modalities that need it), explicit release, shared instances (one build, one encode per
// batch), the precision default, and the overlapped stream (pipeline/bundle_stream.h): same rows as
// the plain loop, input order, the failing input named, no hang on failure, several threads at once.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bundle_testkit.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/cpu_features.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/bundle_stream.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using experts::MediaInput;
using experts::Modality;

namespace {

// test-proj with counters: how often each weights file was built and encoded. No probe: its width
// is only known once built.
struct Counts {
  std::mutex mu;
  std::map<std::string, int> builds, encodes;
  void reset() {
    std::lock_guard<std::mutex> l(mu);
    builds.clear();
    encodes.clear();
  }
  int build_count(const std::string& f) {
    std::lock_guard<std::mutex> l(mu);
    return builds[f];
  }
  int encode_count(const std::string& f) {
    std::lock_guard<std::mutex> l(mu);
    return encodes[f];
  }
};
Counts& counts() {
  static Counts c;
  return c;
}

class CountingExpert : public testkit::ProjExpert {
 public:
  explicit CountingExpert(const experts::ExpertOptions& o) : ProjExpert(o), file_(fs::path(o.weights).filename().string()) {
    std::lock_guard<std::mutex> l(counts().mu);
    counts().builds[file_] += 1;
  }
  at::Tensor encode(experts::Modality m, const at::Tensor& batch) const override {
    {
      std::lock_guard<std::mutex> l(counts().mu);
      counts().encodes[file_] += 1;
    }
    return ProjExpert::encode(m, batch);
  }

 private:
  std::string file_;
};

void register_counting() {
  testkit::ProjExpert::register_once();
  static bool done = [] {
    experts::register_expert("test-count", "counting projected hashing expert for tests",
                             [](const experts::ExpertOptions& o) { return std::make_unique<CountingExpert>(o); });
    return true;
  }();
  (void)done;
}

std::string write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

nlohmann::json read_manifest(const fs::path& dir) { return nlohmann::json::parse(read_file_bytes((dir / "bundle.json").string())); }
void write_manifest(const fs::path& dir, const nlohmann::json& j) { write_file(dir / "bundle.json", j.dump(2)); }

// The tiny bundle with every entry switched to the counting family.
fs::path counting_bundle(const std::string& tag) {
  register_counting();
  fs::path dir = fs::path(testkit::make_temp_dir(tag)) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  auto j = read_manifest(dir);
  for (auto& e : j["experts"]) e["family"] = "test-count";
  write_manifest(dir, j);
  return dir;
}

// Media files of distinct content (the hashing expert reads bytes), some of different lengths.
std::vector<MediaInput> media(const fs::path& dir, int n) {
  std::vector<MediaInput> v;
  for (int i = 0; i < n; ++i)
    v.push_back(MediaInput::from_path(
        write_file(dir / ("m" + std::to_string(i) + ".bin"), "media item " + std::to_string(i * 7919) + std::string(i, 'x'))));
  return v;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(BundleRuntime, ExpertsAreBuiltOnlyForTheModalityEmbedded) {
  fs::path dir = counting_bundle("runtime_lazy");
  counts().reset();
  auto b = pipeline::ModelBundle::load(dir);
  EXPECT_EQ(b.loaded_instances(), 0u);
  EXPECT_EQ(b.modalities().size(), 4u);  // known from the manifest and binding, nothing built
  auto in = media(testkit::make_temp_dir("runtime_media"), 3);

  at::Tensor img = b.embed(Modality::Image, in);
  EXPECT_EQ(b.loaded_experts(), (std::vector<std::string>{"B", "IB"}));
  EXPECT_EQ(counts().build_count("A.safetensors"), 0);
  EXPECT_EQ(counts().build_count("P.safetensors"), 0);
  b.embed(Modality::Image, in);  // built once, reused
  EXPECT_EQ(counts().build_count("B.safetensors"), 1);

  b.embed(Modality::Point, in);
  EXPECT_EQ(b.loaded_experts(), (std::vector<std::string>{"B", "IB", "P"}));
  EXPECT_EQ(b.release_experts(Modality::Image), 2u);  // B and IB
  EXPECT_EQ(b.loaded_experts(), (std::vector<std::string>{"P"}));
  EXPECT_EQ(b.release_experts(), 1u);
  EXPECT_EQ(b.loaded_instances(), 0u);
  // Built again on demand, same result.
  EXPECT_TRUE(at::equal(b.embed(Modality::Image, in), img));
  EXPECT_EQ(counts().build_count("B.safetensors"), 2);

  // eager: everything built in load().
  auto e = pipeline::ModelBundle::load(dir, {.eager = true});
  EXPECT_EQ(e.loaded_experts(), (std::vector<std::string>{"A", "B", "IB", "P"}));
}

TEST(BundleRuntime, ABrokenAudioExpertFailsOnlyWhatNeedsIt) {
  fs::path dir = fs::path(testkit::make_temp_dir("runtime_broken")) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  write_file(dir / "experts" / "A.safetensors", "this is not a safetensors file at all");
  auto b = pipeline::ModelBundle::load(dir);  // the file exists; its content is read when audio needs it
  auto in = media(testkit::make_temp_dir("runtime_media"), 2);
  at::Tensor img = b.embed(Modality::Image, in);
  EXPECT_EQ(img.size(0), 2);
  for (Modality m : {Modality::Audio, Modality::Text}) {
    std::string msg = error_of([&] { b.embed(m, m == Modality::Text ? std::vector<MediaInput>{MediaInput::from_text("x")} : in); });
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("experts[0] ('A', family test-proj)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("A.safetensors"), std::string::npos) << msg;
  }
  // Still serves images afterwards, and through the stream too.
  auto r = pipeline::embed_all(b, Modality::Image, in, {});
  EXPECT_TRUE(at::equal(r.unified, img));
}

TEST(BundleRuntime, WidthsAreCheckedWhenBuiltIfNoProbeKnowsThem) {
  fs::path dir = counting_bundle("runtime_dims");
  auto j = read_manifest(dir);
  j["experts"][0]["weights"] = "experts/B.safetensors";  // 16-d feeding 24-d A; test-count has no probe
  write_manifest(dir, j);
  auto b = pipeline::ModelBundle::load(dir);
  auto in = media(testkit::make_temp_dir("runtime_media"), 1);
  EXPECT_NO_THROW(b.embed(Modality::Image, in));
  std::string msg = error_of([&] { b.embed(Modality::Audio, in); });
  EXPECT_NE(msg.find("experts[0] ('A', family test-count) gives 16-d embeddings but the heads take 24"), std::string::npos)
      << msg;
}

TEST(BundleRuntime, IdenticalFeedsShareOneInstanceAndRunOncePerBatch) {
  // Like Base: "U" (a Uni3D space) takes its image/text embeddings from the same expert as "E".
  register_counting();
  auto config = binding::parse_binding_config(R"({
    "name": "shared",
    "experts": {"E": {"modalities": ["image", "text"], "dim": 16},
                "U": {"modalities": ["point", "image", "text"], "dim": 16},
                "IB": {"modalities": ["image", "text"], "dim": 32},
                "BB": {"modalities": ["image", "text"], "dim": 20}},
    "backbone": "BB", "heads_per_space": 2, "projector_hidden": 24, "router_hidden": [12, 6],
    "router_inputs": {"image": ["E", "U"], "point": ["U"], "text": ["E", "U"]}})",
                                              "shared binding");
  fs::path dir = fs::path(testkit::make_temp_dir("runtime_shared")) / "shared.bundle";
  pipeline::BundleManifest m;
  m.binding = config;
  std::vector<pipeline::BundleFile> files = {
      {"heads.safetensors", "", [&](const std::string& p) {
         tensor_io::write_tensors(p, pipeline::random_official_heads(config, {.seed = 5}));
       }},
      {"experts/eva.safetensors", "", [](const std::string& p) { testkit::write_proj_weights(p, 16, 1); }},
      {"experts/uni3d.safetensors", "", [](const std::string& p) { testkit::write_proj_weights(p, 16, 2); }},
      {"experts/ib.safetensors", "", [](const std::string& p) { testkit::write_proj_weights(p, 32, 3); }}};
  m.experts = {{"E", "test-count", "experts/eva.safetensors", "", "", "", {}},
               {"U", "test-count", "experts/eva.safetensors", "", "", "", {"image", "text"}},
               {"U", "test-count", "experts/uni3d.safetensors", "", "", "", {"point"}},
               {"IB", "test-count", "experts/ib.safetensors", "", "", "", {}}};
  pipeline::write_bundle(dir, m, files);

  counts().reset();
  auto b = pipeline::ModelBundle::load(dir);
  auto in = media(testkit::make_temp_dir("runtime_media"), 5);
  auto x = b.expert_embeddings(Modality::Image, in);
  EXPECT_TRUE(at::equal(x.at("E"), x.at("U")));
  EXPECT_EQ(counts().build_count("eva.safetensors"), 1);
  EXPECT_EQ(counts().encode_count("eva.safetensors"), 1);
  EXPECT_EQ(counts().build_count("uni3d.safetensors"), 0);
  EXPECT_EQ(b.loaded_instances(), 2u);  // eva (E and U), ib
  EXPECT_EQ(b.expert_for("E", Modality::Image), b.expert_for("U", Modality::Image));
  EXPECT_NE(b.expert_for("U", Modality::Point), b.expert_for("U", Modality::Image));

  // The stream: batches of 2 over 5 inputs -> 3 encodes of the shared expert, not 6.
  counts().reset();
  pipeline::StreamOptions o;
  o.batch = 2;
  o.keep_experts = true;
  auto r = pipeline::embed_all(b, Modality::Image, in, {}, o);
  EXPECT_EQ(counts().encode_count("eva.safetensors"), 3);
  EXPECT_EQ(r.timings.encode_s.count("E+U"), 1u);
  EXPECT_TRUE(at::equal(r.experts.at("E"), r.experts.at("U")));
}

TEST(BundleRuntime, PrecisionDefaultsToTheCpusUnlessSaid) {
  fs::path dir = fs::path(testkit::make_temp_dir("runtime_prec")) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  EXPECT_FALSE(read_manifest(dir).contains("precision"));  // the writer records none by default
  EXPECT_EQ(pipeline::ModelBundle::load(dir).precision(), std::string(default_precision()));
  auto j = read_manifest(dir);
  j["precision"] = "auto";
  write_manifest(dir, j);
  EXPECT_EQ(pipeline::ModelBundle::load(dir).precision(), std::string(default_precision()));
  EXPECT_EQ(pipeline::ModelBundle::load(dir, {.precision = "fp32"}).precision(), "fp32");
  j["precision"] = "bf16";
  write_manifest(dir, j);
  EXPECT_EQ(pipeline::ModelBundle::load(dir).precision(), "bf16");
  EXPECT_EQ(pipeline::ModelBundle::load(dir, {.precision = "fp32"}).precision(), "fp32");
  EXPECT_EQ(pipeline::ModelBundle::load(dir, {.precision = "auto"}).precision(), std::string(default_precision()));
}

TEST(BundleRuntime, StreamGivesThePlainLoopsRowsInInputOrder) {
  fs::path dir = fs::path(testkit::make_temp_dir("runtime_stream")) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  auto b = pipeline::ModelBundle::load(dir, {.precision = "fp32"});
  auto in = media(testkit::make_temp_dir("runtime_media"), 11);
  in.push_back(MediaInput::from_bytes("raw bytes given directly", "inline.bin"));
  for (Modality m : {Modality::Audio, Modality::Image, Modality::Point}) {
    at::Tensor plain = b.embed(m, in);
    auto x = b.expert_embeddings(m, in);
    for (size_t depth : {0u, 1u, 2u, 5u}) {
      for (size_t batch : {1u, 3u, 12u}) {
        pipeline::StreamOptions o;
        o.batch = batch;
        o.queue_depth = depth;
        o.keep_experts = true;
        std::vector<size_t> begins;
        at::Tensor rows;
        {
          std::vector<at::Tensor> parts;
          auto t = pipeline::embed_stream(b, m, in, {}, o, [&](pipeline::StreamBatch&& s) {
            begins.push_back(s.begin);
            parts.push_back(s.unified);
          });
          rows = at::cat(parts);
          EXPECT_EQ(t.items, in.size());
          EXPECT_EQ(t.batches, (in.size() + batch - 1) / batch);
        }
        for (size_t k = 0; k < begins.size(); ++k) EXPECT_EQ(begins[k], k * batch);  // in order
        ASSERT_EQ(rows.sizes(), plain.sizes());
        EXPECT_LT((rows - plain).abs().max().item<float>(), 1e-6) << experts::modality_name(m) << " depth " << depth;
        auto r = pipeline::embed_all(b, m, in, {}, o);
        EXPECT_TRUE(at::equal(r.unified, rows));
        for (auto& [n, t] : x) EXPECT_LT((r.experts.at(n) - t).abs().max().item<float>(), 1e-6) << n;
      }
    }
    // Row i is input i's embedding alone.
    for (size_t i = 0; i < in.size(); ++i)
      EXPECT_LT((plain[static_cast<int64_t>(i)] - b.embed(m, {in[i]})[0]).abs().max().item<float>(), 1e-5);
  }
  // Texts stream too.
  std::vector<MediaInput> texts = {MediaInput::from_text("a dog"), MediaInput::from_text("rain"), MediaInput::from_text("a car")};
  EXPECT_LT((pipeline::embed_all(b, Modality::Text, texts, {}, {.batch = 2}).unified - b.embed(Modality::Text, texts))
                .abs()
                .max()
                .item<float>(),
            1e-6);
}

TEST(BundleRuntime, StreamNamesTheFailingInputAndStopsCleanly) {
  fs::path dir = fs::path(testkit::make_temp_dir("runtime_fail")) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  auto b = pipeline::ModelBundle::load(dir);
  fs::path md = testkit::make_temp_dir("runtime_media");
  auto in = media(md, 9);
  const std::string bad = write_file(md / "short.wav", "ab");  // the hashing expert needs 3 bytes
  in.insert(in.begin() + 7, MediaInput::from_path(bad));
  std::vector<std::string> names;
  for (auto& i : in) names.push_back(i.path);
  for (size_t depth : {0u, 2u}) {
    size_t sunk = 0;
    std::string msg = error_of([&] {
      pipeline::embed_stream(b, Modality::Audio, in, names, {.batch = 2, .queue_depth = depth},
                             [&](pipeline::StreamBatch&& s) { sunk += static_cast<size_t>(s.unified.size(0)); });
    });
    EXPECT_EQ(msg.rfind(bad + ": ", 0), 0u) << msg;  // named once, first
    EXPECT_EQ(msg.find(bad, 1), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(sunk, 6u);  // batches before the failing one
  }
  // A missing file is named too; the sink throwing stops the worker (no hang, the error comes out).
  in[3] = MediaInput::from_path((md / "gone.wav").string());
  EXPECT_NE(error_of([&] { pipeline::embed_all(b, Modality::Audio, in, {}, {.batch = 2}); }).find("gone.wav"), std::string::npos);
  auto ok = media(md, 20);
  EXPECT_THROW(pipeline::embed_stream(b, Modality::Audio, ok, {}, {.batch = 1, .queue_depth = 2},
                                      [](pipeline::StreamBatch&&) { throw InputError("sink full"); }),
               InputError);
}

TEST(BundleRuntime, SeveralThreadsEmbedWhileExpertsAreReleased) {
  fs::path dir = counting_bundle("runtime_threads");
  auto b = pipeline::ModelBundle::load(dir);
  auto in = media(testkit::make_temp_dir("runtime_media"), 4);
  const at::Tensor want_img = b.embed(Modality::Image, in), want_aud = b.embed(Modality::Audio, in);
  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k)
    ts.emplace_back([&, k] {
      for (int i = 0; i < 15; ++i) {
        Modality m = (k + i) % 2 ? Modality::Image : Modality::Audio;
        at::Tensor got = k == 3 ? pipeline::embed_all(b, m, in, {}, {.batch = 3}).unified : b.embed(m, in);
        // The stream's batches of 3 may round differently from one batch of 4: compare within 1e-6.
        if ((got - (m == Modality::Image ? want_img : want_aud)).abs().max().item<float>() > 1e-6f) ++bad;
      }
    });
  std::thread releaser([&] {
    while (!stop) {
      b.release_experts();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (auto& t : ts) t.join();
  stop = true;
  releaser.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(BundleRuntime, MediaModalityFromMagicBytesThenExtension) {
  using pipeline::media_modality;
  EXPECT_EQ(media_modality("\xFF\xD8\xFF\xE0rest", "x.bin"), Modality::Image);
  EXPECT_EQ(media_modality("\x89PNG\r\n\x1a\nrest", "x.wav"), Modality::Image);  // bytes win over the name
  EXPECT_EQ(media_modality(std::string("RIFF\x10\0\0\0WAVEfmt ", 16), "x.jpg"), Modality::Audio);
  EXPECT_EQ(media_modality(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16), "x"), Modality::Image);
  EXPECT_EQ(media_modality("fLaC\0\0", "x"), Modality::Audio);
  EXPECT_EQ(media_modality("OggS\0", "x"), Modality::Audio);
  EXPECT_EQ(media_modality("ply\nformat ascii 1.0\n", "x"), Modality::Point);
  EXPECT_EQ(media_modality("\x93NUMPY\x01\x00", "x"), Modality::Point);
  EXPECT_EQ(media_modality("# .PCD v0.7\n", "x"), Modality::Point);
  EXPECT_EQ(media_modality("whatever", "dir/x.PCD"), Modality::Point);
  EXPECT_EQ(media_modality("whatever", "x.mp3"), Modality::Audio);
  EXPECT_EQ(media_modality("a dog barking", "caption.txt"), Modality::Text);
  EXPECT_EQ(media_modality("unknown", "x.bin"), std::nullopt);
  EXPECT_EQ(media_modality("unknown", "dir.v2/x"), std::nullopt);
  if (auto d = testkit::shared_dir(); !d.empty()) {
    EXPECT_EQ(pipeline::file_modality(d + "/data/demo/dog_image.jpg"), Modality::Image);
    EXPECT_EQ(pipeline::file_modality(d + "/data/demo/dog_audio.wav"), Modality::Audio);
    EXPECT_EQ(pipeline::file_modality(d + "/data/demo/BBQ.npy"), Modality::Point);
  }
}

TEST(BundleRuntime, VerifyExpertsBuildsEachOnceAndKeepsNone) {
  fs::path dir = counting_bundle("runtime_verify");
  counts().reset();
  auto b = pipeline::ModelBundle::load(dir);
  b.verify_experts();  // what convert runs: every expert built once, one at a time, none kept
  for (auto f : {"A.safetensors", "B.safetensors", "P.safetensors", "IB.safetensors"}) EXPECT_EQ(counts().build_count(f), 1) << f;
  EXPECT_EQ(b.loaded_instances(), 0u);
  // One already built stays built.
  b.embed(Modality::Point, media(testkit::make_temp_dir("runtime_media"), 1));
  b.verify_experts();
  EXPECT_EQ(b.loaded_experts(), (std::vector<std::string>{"P"}));
  // A broken file (which load accepts: it exists) is found, one line naming the entry.
  write_file(dir / "experts" / "B.safetensors", "garbage");
  auto broken = pipeline::ModelBundle::load(dir);
  std::string msg = error_of([&] { broken.verify_experts(); });
  EXPECT_NE(msg.find("experts[1] ('B', family test-count)"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}
