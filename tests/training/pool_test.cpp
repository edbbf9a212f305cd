// Embedding pools: round trip, sharding, streaming reads, and one-line errors on damaged pools.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/embedding_pool.h"
#include "testing/test_support.h"
#include "toy_world.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

TEST(EmbeddingPool, RoundTripWithShardsAndHalfPrecision) {
  const fs::path dir = fs::path(testkit::make_temp_dir("pool")) / "p";
  toy::World world(1);
  PoolWriter w(dir, world.manifest(), /*shard_rows=*/64);
  w.set_half(true);
  at::Tensor labels = at::arange(150, at::kLong).remainder(8);
  auto audio = world.embed("audio", labels);
  w.add("audio", audio, {{"label", labels}});
  w.finish();
  EXPECT_FALSE(fs::exists(dir.string() + ".tmp-" + std::to_string(::getpid())));
  EmbeddingPool pool = EmbeddingPool::open(dir);
  EXPECT_EQ(pool.modalities(), std::vector<std::string>{"audio"});
  EXPECT_EQ(pool.rows("audio"), 150);
  EXPECT_TRUE(pool.has("audio", "AT"));
  EXPECT_FALSE(pool.has("audio", "IT"));
  // Rows crossing shard boundaries, stored in f16: equal to the f32 input within f16 rounding.
  at::Tensor got = pool.embeddings("audio", "AT", 50, 140);
  EXPECT_TRUE(at::allclose(got, audio["AT"].narrow(0, 50, 90), 0, 2e-3));
  at::Tensor rows = at::tensor({149, 0, 64, 63, 128}, at::kLong);
  EXPECT_TRUE(at::allclose(pool.gather("audio", "AT", rows), audio["AT"].index_select(0, rows), 0, 2e-3));
  EXPECT_TRUE(at::equal(*pool.column("audio", "label"), labels));
  EXPECT_FALSE(pool.column("audio", "source").has_value());
  EXPECT_EQ(pool.manifest().classes.size(), 8u);
}

TEST(EmbeddingPool, DamagedPoolsGiveOneLineErrors) {
  const fs::path base = fs::path(testkit::make_temp_dir("pool_bad"));
  toy::World world(2);
  world.write_pool(base / "ok", 40);
  auto copy = [&](const std::string& name) {
    fs::copy(base / "ok", base / name, fs::copy_options::recursive);
    return base / name;
  };
  // Expert missing from the manifest.
  {
    fs::path d = copy("missing_expert");
    auto j = nlohmann::json::parse(read_file_bytes((d / "manifest.json").string()));
    j["experts"].erase(2);  // PI
    write_bytes_atomically((d / "manifest.json").string(), j.dump());
    EXPECT_NE(omnibind::testkit::input_error_of([&] { EmbeddingPool::open(d); }).find("'PI' names no expert of the manifest"), std::string::npos);
  }
  // Dim disagreeing with the manifest.
  {
    fs::path d = copy("bad_dim");
    auto j = nlohmann::json::parse(read_file_bytes((d / "manifest.json").string()));
    j["experts"][0]["dim"] = 13;
    write_bytes_atomically((d / "manifest.json").string(), j.dump());
    const std::string e = omnibind::testkit::input_error_of([&] { EmbeddingPool::open(d); });
    EXPECT_NE(e.find("expected [N, 13]"), std::string::npos) << e;
  }
  // Row counts that disagree between experts of one modality.
  {
    fs::path d = copy("bad_rows");
    tensor_io::write_tensors((d / "text-0.safetensors").string(),
                             {{"AT", at::randn({40, 12})}, {"IT", at::randn({39, 16})}, {"label", at::zeros({40}, at::kLong)}});
    const std::string e = omnibind::testkit::input_error_of([&] { EmbeddingPool::open(d); });
    EXPECT_NE(e.find("rows"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  // NaN rows are named when read.
  {
    fs::path d = copy("nan");
    at::Tensor x = at::randn({40, 12});
    x[7][3] = std::numeric_limits<float>::quiet_NaN();
    tensor_io::write_tensors((d / "audio-0.safetensors").string(), {{"AT", x}, {"label", at::zeros({40}, at::kLong)}});
    EmbeddingPool pool = EmbeddingPool::open(d);
    const std::string e = omnibind::testkit::input_error_of([&] { pool.embeddings("audio", "AT", 0, 40); });
    EXPECT_NE(e.find("row 7 holds NaN"), std::string::npos) << e;
  }
  // Bad JSON and a missing shard.
  {
    fs::path d = copy("bad_json");
    write_bytes_atomically((d / "manifest.json").string(), "{\"experts\": [");
    EXPECT_NE(omnibind::testkit::input_error_of([&] { EmbeddingPool::open(d); }).find("invalid JSON"), std::string::npos);
    fs::path d2 = copy("missing_shard");
    fs::remove(d2 / "image-0.safetensors");
    EXPECT_NE(omnibind::testkit::input_error_of([&] { EmbeddingPool::open(d2); }).find("missing"), std::string::npos);
  }
}

}  // namespace
}  // namespace omnibind::training
