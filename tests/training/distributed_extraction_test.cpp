// `omnibind embed --model B --manifest FILES.txt --pool DIR` (issue 17 item 2) over 1, 2 and 3 ranks
// (omnibind launch, loopback): the same pool bytes whatever the rank count, bad inputs reported and
// skipped (fatal with --strict), a rerun redoing only a deleted shard. A tiny bundle of precomputed
// experts (tests/cli/bundle_world.h's binding) keeps every run to a few seconds.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "cli/bundle_world.h"
#include "distributed_support.h"
#include "omnibind/training/pool_extraction.h"
#include "pipeline/bundle_testkit.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/training/embedding_pool.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

// 11 good "audio" files the precomputed audio experts know, one they do not know, one missing file
// and one image: a FILES.txt of 14 lines with class-name labels.
struct ExtractWorld {
  fs::path dir;
  std::string bundle, list;
  std::vector<std::string> good;
  std::map<std::string, at::Tensor> audio_rows;  // expert -> [11, d]

  ExtractWorld() {
    dir = testkit::make_temp_dir("dist_extract");
    std::ofstream(dir / "binding.json") << testkit::kBinding;
    auto config = binding::parse_binding_config(testkit::kBinding, "binding");
    tensor_io::write_tensors((dir / "heads.safetensors").string(), pipeline::random_official_heads(config, {.seed = 7}));
    for (int i = 0; i < 11; ++i) {
      good.push_back((dir / ("clip" + std::to_string(i) + ".wav")).string());
      std::ofstream(good.back()) << "not really audio " << i;
    }
    std::ofstream(dir / "unknown.wav") << "not in any pool";
    std::ofstream(dir / "photo.png") << "\x89PNG\r\n\x1a\n not really an image";
    at::Generator g = at::detail::createCPUGenerator(11);
    std::vector<std::string> args = {"convert", "--config", (dir / "binding.json").string(), "--heads",
                                     (dir / "heads.safetensors").string(), "--out", (dir / "b.bundle").string()};
    auto pool = [&](const std::string& name, const std::string& modality, const std::vector<std::string>& paths, int64_t d) {
      at::Tensor rows = at::randn({static_cast<int64_t>(paths.size()), d}, g);
      rows = rows / rows.norm(2, 1, true);
      const std::string file = (dir / (name + "_" + modality + ".safetensors")).string();
      tensor_io::write_tensors(file, {{name, rows}},
                               {{"modality", modality}, {"expert", "test"}, {"key", name}, {"dim", std::to_string(d)},
                                {"paths", nlohmann::json(paths).dump()}});
      args.insert(args.end(), {"--expert", name + "=precomputed:" + file + ",modalities=" + modality});
      return rows;
    };
    for (auto& [n, d] : std::vector<std::pair<std::string, int64_t>>{{"A", 24}, {"B", 16}, {"IB", 32}}) {
      pool(n, "text", testkit::kTexts, d);
      if (n != "B") audio_rows[n] = pool(n, "audio", good, d);
    }
    auto r = testkit::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    bundle = (dir / "b.bundle").string();
    // Paths relative to the list's directory; labels by class name; the bad ones in the middle.
    list = (dir / "files.txt").string();
    std::ofstream f(list);
    f << "# path<TAB>label\n";
    for (int i = 0; i < 11; ++i) {
      f << "clip" << i << ".wav\t" << (i % 3 == 0 ? "dog" : "rain") << "\n";
      if (i == 4) f << "unknown.wav\tdog\n";
      if (i == 6) f << "missing.wav\n" << "photo.png\train\n";
    }
  }

  std::vector<std::string> embed_args(const std::string& pool, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"embed", "--model", bundle, "--modality", "audio", "--manifest", list, "--pool",
                                  (dir / pool).string(), "--shard-items", "4", "--batch", "2", "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  testkit::CliResult run(int nproc, const std::string& pool, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a;
    if (nproc > 0) a = {"launch", "--nproc", std::to_string(nproc), "--"};
    auto e = embed_args(pool, extra);
    a.insert(a.end(), e.begin(), e.end());
    return testkit::run_cli(a);
  }
};

const ExtractWorld& world() {
  static ExtractWorld w;
  return w;
}

std::map<std::string, std::string> dir_bytes(const fs::path& d) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::directory_iterator(d)) out[e.path().filename().string()] = read_file_bytes(e.path().string());
  return out;
}

TEST(DistributedExtraction, OneTwoThreeRanksWriteTheSamePool) {
  const auto& w = world();
  auto one = w.run(0, "p1");  // a plain process (world size 1)
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto ref = dir_bytes(w.dir / "p1");
  // 14 inputs in shards of 4: 4 shards (files + sidecars), manifest, report.
  for (const char* f : {"manifest.json", "audio-report.json", "audio-00000.safetensors", "audio-00003.safetensors", "audio-00003.json"})
    EXPECT_TRUE(ref.count(f)) << f;
  for (int n : {1, 2, 3}) {
    const std::string p = "p_launch" + std::to_string(n);
    auto r = w.run(n, p);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (n == 3) {
      EXPECT_NE(r.err.find("[rank 2] embed: shard 2 of 4 embedded"), std::string::npos) << "shard 2 goes to rank 2: " << r.err;
      EXPECT_NE(r.err.find("[rank 0] embed: shard 3 of 4 embedded"), std::string::npos) << "shard 3 back to rank 0: " << r.err;
      EXPECT_NE(r.err.find("[rank 0] embed: overall 4 of 4 shards done: 11 rows, 3 skipped"), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("[rank 1] embed: overall"), std::string::npos) << "overall progress from rank 0 only: " << r.err;
    }
    const auto got = dir_bytes(w.dir / p);
    ASSERT_EQ(got.size(), ref.size()) << n << " ranks";
    for (auto& [name, bytes] : ref) EXPECT_TRUE(got.count(name) && got.at(name) == bytes) << name << " differs with " << n << " ranks";
  }

  // The pool opens, holds the 11 good inputs' rows of every audio expert (f16), with their labels.
  auto pool = EmbeddingPool::open(w.dir / "p1");
  ASSERT_EQ(pool.rows("audio"), 11);
  EXPECT_EQ(pool.manifest().classes, (std::vector<std::string>{"dog", "rain"}));
  auto label = pool.column("audio", "label");
  ASSERT_TRUE(label.has_value());
  for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(label->index({i}).item<int64_t>(), i % 3 == 0 ? 0 : 1) << i;
  ASSERT_TRUE(pool.has("audio", "A"));
  at::Tensor a = pool.embeddings("audio", "A", 0, 11);
  EXPECT_LT((a - w.audio_rows.at("A")).abs().max().item<float>(), 1e-3);
  auto manifest = nlohmann::json::parse(read_file_bytes((w.dir / "p1" / "manifest.json").string()));
  EXPECT_EQ(manifest["extraction"]["audio"]["dtype"], "F16");
  EXPECT_EQ(manifest["extraction"]["audio"]["shards"].size(), 4u);

  // The report: the three bad inputs with their reasons, in list order.
  auto report = nlohmann::json::parse(read_file_bytes((w.dir / "p1" / "audio-report.json").string()));
  ASSERT_EQ(report["skipped"].size(), 3u) << report.dump();
  EXPECT_EQ(report["skipped"][0]["path"], "unknown.wav");
  EXPECT_EQ(report["skipped"][1]["path"], "missing.wav");
  EXPECT_EQ(report["skipped"][1]["reason"], "no such file");
  EXPECT_EQ(report["skipped"][2]["path"], "photo.png");
  EXPECT_NE(report["skipped"][2]["reason"].get<std::string>().find("image file, not audio"), std::string::npos);
}

TEST(DistributedExtraction, StrictMakesABadInputFatal) {
  const auto& w = world();
  // One process: an error line naming the input, exit 2.
  auto one = w.run(0, "p_strict1", {"--strict"});
  EXPECT_EQ(one.exit_code, 2) << one.err;
  EXPECT_NE(one.err.find("\nomnibind embed: unknown.wav: "), std::string::npos) << one.err;  // after shard 0's line
  EXPECT_FALSE(fs::exists(w.dir / "p_strict1" / "manifest.json"));
  // Two ranks: rank 1 (shard 1 holds unknown.wav) fails, launch stops rank 0 (which may report its
  // peer's exit first, exit 1) and fails.
  auto r = w.run(2, "p_strict", {"--strict"});
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[rank 1] omnibind embed: unknown.wav: "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(w.dir / "p_strict" / "manifest.json"));
}

TEST(DistributedExtraction, RerunRedoesOnlyTheMissingShard) {
  const auto& w = world();
  auto first = w.run(2, "p_resume");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto before = dir_bytes(w.dir / "p_resume");
  const fs::path kept = w.dir / "p_resume" / "audio-00002.safetensors";
  const auto kept_time = fs::last_write_time(kept);
  fs::remove(w.dir / "p_resume" / "audio-00001.safetensors");
  // A shard whose file no longer matches its recorded hash is redone too.
  {
    std::ofstream f(w.dir / "p_resume" / "audio-00003.safetensors", std::ios::app);
    f << "x";
  }
  auto again = w.run(3, "p_resume");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("embed: shard 1 of 4 embedded"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("embed: shard 3 of 4 embedded"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("embed: shard 0 of 4 already complete"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("embed: shard 2 of 4 already complete"), std::string::npos) << again.err;
  EXPECT_EQ(fs::last_write_time(kept), kept_time);
  EXPECT_EQ(dir_bytes(w.dir / "p_resume"), before);
}

// The same through the library with a real (tiny) matmul expert, test-proj (registered in this process
// only): two ranks as two threads of this process over a Gloo group write the bytes one process writes.
TEST(DistributedExtraction, RealExpertTwoRankThreadsMatchOneProcess) {
  const fs::path dir = testkit::make_temp_dir("dist_extract_lib");
  testkit::write_tiny_bundle(dir / "t.bundle", 3);
  std::ofstream list(dir / "images.txt");
  at::Generator g = at::detail::createCPUGenerator(5);
  for (int i = 0; i < 17; ++i) {
    const std::string name = "img" + std::to_string(i) + ".jpg";
    at::Tensor bytes = at::randint(0, 256, {200 + 13 * i}, g, at::kByte);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data_ptr()), bytes.numel());
    list << name << "\t" << i % 4 << "\n";
  }
  list.close();
  const auto inputs = read_extraction_list((dir / "images.txt").string(), experts::Modality::Image);
  ASSERT_EQ(inputs.size(), 17u);
  ExtractionOptions o;
  o.shard_items = 5;
  o.batch = 3;
  o.progress = false;
  auto run = [&](const std::string& pool, int rank, int world, int port) {
    auto bundle = pipeline::ModelBundle::load(dir / "t.bundle");
    distributed::RankInfo info;
    info.rank = rank;
    info.world_size = world;
    info.local_rank = rank;
    info.master_port = port;
    info.timeout_s = 30;
    auto ctx = distributed::DistributedContext::connect(info);
    ExtractionOptions mine = o;
    mine.pool = (dir / pool).string();
    return extract_to_pool(bundle, experts::Modality::Image, inputs, mine, ctx);
  };
  auto one = run("p1", 0, 1, 0);
  EXPECT_EQ(one.rows, 17);
  EXPECT_EQ(one.embedded_here, 4);
  const int port = testkit::dist::free_port();
  ExtractionSummary s0, s1;
  std::string e1;
  std::thread t1([&] {
    try {
      s1 = run("p2", 1, 2, port);
    } catch (const std::exception& e) {
      e1 = e.what();
    }
  });
  s0 = run("p2", 0, 2, port);
  t1.join();
  ASSERT_EQ(e1, "");
  EXPECT_EQ(s0.embedded_here, 2);  // shards 0, 2
  EXPECT_EQ(s1.embedded_here, 2);  // shards 1, 3
  EXPECT_EQ(dir_bytes(dir / "p1"), dir_bytes(dir / "p2"));
  // The rows are the experts' own (f16), and every image expert of the bundle is stored.
  auto pool = EmbeddingPool::open(dir / "p1");
  auto bundle = pipeline::ModelBundle::load(dir / "t.bundle");
  std::vector<experts::MediaInput> media;
  for (auto& in : inputs) media.push_back(experts::MediaInput::from_path(in.resolved));
  auto want = bundle.expert_embeddings(experts::Modality::Image, media);
  ASSERT_FALSE(want.empty());
  for (auto& [name, rows] : want) {
    ASSERT_TRUE(pool.has("image", name)) << name;
    EXPECT_LT((pool.embeddings("image", name, 0, 17) - rows).abs().max().item<float>(), 2e-3) << name;
  }
  auto label = pool.column("image", "label");
  ASSERT_TRUE(label.has_value());
  EXPECT_EQ(label->index({6}).item<int64_t>(), 2);
}

}  // namespace
}  // namespace omnibind::training
