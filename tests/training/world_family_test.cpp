// The synthetic world family (training/world_family.h): determinism, a tuning/held-out split that never
// overlaps, real variety of structure, and pools the rest of the pipeline accepts.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "omnibind/binding/binding_config.h"
#include "omnibind/common/error.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/embedding_pool.h"
#include "omnibind/training/tuple_mining.h"
#include "omnibind/training/world_family.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every regular file under `dir`, relative path -> bytes.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = bytes_of(e.path());
  return out;
}

TEST(WorldFamily, SameMemberSameBytes) {
  const fs::path base(testkit::make_temp_dir("world_det"));
  for (auto split : {WorldSplit::Tuning, WorldSplit::HeldOut}) {
    for (int64_t k : {0, 1, 3}) {
      WorldSpec a = world_spec(split, k), b = world_spec(split, k);
      EXPECT_EQ(world_spec_to_json(a), world_spec_to_json(b));
      scale_world_rows(a, 0.03);
      scale_world_rows(b, 0.03);
      const std::string tag = world_split_name(split) + std::to_string(k);
      write_world(a, base / (tag + "a"));
      write_world(b, base / (tag + "b"));
      auto ta = tree(base / (tag + "a")), tb = tree(base / (tag + "b"));
      ASSERT_FALSE(ta.empty());
      EXPECT_EQ(ta, tb) << tag;
    }
  }
  // Different members give different data.
  WorldSpec x = world_spec(WorldSplit::Tuning, 4), y = world_spec(WorldSplit::Tuning, 8);  // both base-like
  EXPECT_EQ(x.shape, "base-like");
  EXPECT_EQ(y.shape, "base-like");
  scale_world_rows(x, 0.03);
  scale_world_rows(y, 0.03);
  write_world(x, base / "x");
  write_world(y, base / "y");
  const std::string ax = bytes_of(base / "x" / "train" / "audio-0.safetensors");
  ASSERT_FALSE(ax.empty());
  EXPECT_NE(ax, bytes_of(base / "y" / "train" / "audio-0.safetensors"));
}

TEST(WorldFamily, TuningAndHeldOutNeverOverlap) {
  std::set<uint64_t> tuning_seeds;
  std::set<std::string> tuning_worlds;
  for (int64_t k = 0; k < kTuningWorlds; ++k) {
    WorldSpec w = world_spec(WorldSplit::Tuning, k);
    EXPECT_EQ(w.split, "tuning");
    tuning_seeds.insert(w.seed);
    if (k < 64) {  // the structure JSON without split/index/name: the world itself
      w.split = "x";
      w.index = 0;
      w.config.name = "x";
      tuning_worlds.insert(world_spec_to_json(w));
    }
  }
  EXPECT_EQ(tuning_seeds.size(), static_cast<size_t>(kTuningWorlds));
  EXPECT_GE(kHeldOutWorlds, 20);
  std::set<uint64_t> held_seeds;
  for (int64_t k = 0; k < kHeldOutWorlds; ++k) {
    WorldSpec w = world_spec(WorldSplit::HeldOut, k);
    EXPECT_EQ(w.split, "heldout");
    EXPECT_EQ(tuning_seeds.count(w.seed), 0u) << "held-out world " << k << " shares a seed with a tuning world";
    held_seeds.insert(w.seed);
    w.split = "x";
    w.index = 0;
    w.config.name = "x";
    EXPECT_EQ(tuning_worlds.count(world_spec_to_json(w)), 0u) << "held-out world " << k << " equals a tuning world";
  }
  EXPECT_EQ(held_seeds.size(), static_cast<size_t>(kHeldOutWorlds));
  // Out of range members are refused, not wrapped into the other split.
  EXPECT_NE(testkit::input_error_of([] { world_spec(WorldSplit::HeldOut, kHeldOutWorlds); }).find("out of range"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([] { world_spec(WorldSplit::Tuning, -1); }).find("out of range"), std::string::npos);
  EXPECT_NE(testkit::input_error_of([] { parse_world_split("test"); }).find("tuning or heldout"), std::string::npos);
}

TEST(WorldFamily, HeldOutWorldsVaryInStructure) {
  std::set<size_t> space_counts;
  std::set<int64_t> classes, heads, hiddens;
  std::set<std::string> shapes, coverages;
  std::set<bool> backbone_slot;
  int64_t min_dim = 1000, max_dim = 0, unequal = 0, with_ib = 0, without_ib = 0;
  for (int64_t k = 0; k < kHeldOutWorlds; ++k) {
    const WorldSpec w = world_spec(WorldSplit::HeldOut, k);
    w.config.validate();
    space_counts.insert(w.spaces.size());
    classes.insert(w.classes);
    shapes.insert(w.shape);
    heads.insert(w.config.heads_per_space);
    hiddens.insert(w.config.projector_hidden);
    backbone_slot.insert(w.config.backbone_in_output);
    (w.find("IB") ? with_ib : without_ib) += 1;
    std::set<int64_t> rows;
    for (const auto& [m, n] : w.train_rows) rows.insert(n);
    if (rows.size() > 1) ++unequal;
    for (const auto& s : w.spaces) {
      min_dim = std::min(min_dim, s.dim);
      max_dim = std::max(max_dim, s.dim);
      EXPECT_GE(s.dim, 16);
      EXPECT_LE(s.dim, 128);
      std::string cov;
      for (const auto& m : s.modalities) cov += m[0];
      coverages.insert(cov);
      // Per-class reliabilities differ within a space unless it is reliable everywhere.
      EXPECT_EQ(static_cast<int64_t>(s.class_noise.size()), w.classes);
    }
    // Every modality is covered by some space and reachable for mining.
    for (const char* m : {"audio", "image", "point", "text"}) {
      bool covered = false;
      for (const auto& s : w.spaces) covered |= std::find(s.modalities.begin(), s.modalities.end(), m) != s.modalities.end();
      EXPECT_TRUE(covered) << "held-out world " << k << " has no " << m << " space";
    }
  }
  EXPECT_GE(space_counts.size(), 3u);
  EXPECT_GE(classes.size(), 8u);
  EXPECT_EQ(shapes, (std::set<std::string>{"base-like", "random"}));
  EXPECT_GE(heads.size(), 3u);
  EXPECT_GE(hiddens.size(), 2u);
  EXPECT_EQ(backbone_slot.size(), 2u);
  EXPECT_LE(min_dim, 32);
  EXPECT_GE(max_dim, 112);
  EXPECT_GE(coverages.size(), 5u);  // at, it, pt/pit/pi, ait, ...
  EXPECT_GE(unequal, kHeldOutWorlds / 2);
  EXPECT_GT(with_ib, 0);
  EXPECT_GT(without_ib, 0);
}

TEST(WorldFamily, BaseLikeMemberIsTheIssueWorld) {
  const WorldSpec w = world_spec(WorldSplit::Tuning, 0);
  EXPECT_EQ(w.shape, "base-like");
  EXPECT_EQ(w.classes, 40);
  ASSERT_NE(w.find("BB"), nullptr);
  EXPECT_EQ(w.backbone, "BB");
  EXPECT_EQ(w.find("BB")->dim, 64);
  EXPECT_EQ(w.find("BB")->modalities, (std::vector<std::string>{"image", "text"}));
  // Three audio-text spaces, each reliable (lowest noise) on a different third of the classes.
  for (int i = 0; i < 3; ++i) {
    const WorldSpace* s = w.find("AT" + std::to_string(i + 1));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->modalities, (std::vector<std::string>{"audio", "text"}));
    for (int64_t c = 0; c < 40; ++c) {
      const bool mine = c >= i * 40 / 3 && c < (i + 1) * 40 / 3;
      const double other = w.find("AT" + std::to_string((i + 1) % 3 + 1))->class_noise[static_cast<size_t>(c)];
      if (mine) {
        EXPECT_LT(s->class_noise[static_cast<size_t>(c)], other) << "AT" << i + 1 << " class " << c;
      }
    }
    // Sound captions are read best by the audio family.
    EXPECT_LT(s->source_noise[0], s->source_noise[1]);
    EXPECT_LT(s->source_noise[0], s->source_noise[2]);
  }
  EXPECT_EQ(w.find("IT1")->modalities, (std::vector<std::string>{"image", "text"}));
  EXPECT_EQ(w.find("PIT1")->modalities, (std::vector<std::string>{"image", "point", "text"}));
  EXPECT_EQ(w.find("IB")->modalities, (std::vector<std::string>{"audio", "image", "text"}));
  int64_t tuples = 0;
  for (const auto& [m, n] : w.train_rows) tuples += n;
  EXPECT_EQ(tuples, 24000);
  EXPECT_EQ(w.config.heads_per_space, 7);
  EXPECT_FALSE(w.config.backbone_in_output);
}

TEST(WorldFamily, WrittenWorldIsAValidPoolAndTrains) {
  const fs::path dir = fs::path(testkit::make_temp_dir("world_pool")) / "w";
  for (auto [split, k] : {std::pair{WorldSplit::Tuning, int64_t{1}}, std::pair{WorldSplit::HeldOut, int64_t{0}}}) {
    WorldSpec w = world_spec(split, k);
    scale_world_rows(w, 0.04);
    const fs::path d = dir / (world_split_name(split) + std::to_string(k));
    WorldFiles files = write_world(w, d);
    EXPECT_TRUE(fs::exists(files.description));
    auto config = binding::load_binding_config(files.config.string());
    EXPECT_EQ(binding::binding_config_to_json(config), binding::binding_config_to_json(w.config));
    EmbeddingPool train = EmbeddingPool::open(files.train);
    check_pool_against_config(train, config);
    EXPECT_EQ(train.manifest().backbone, w.backbone);
    EXPECT_EQ(static_cast<int64_t>(train.manifest().classes.size()), w.classes);
    for (const auto& [m, n] : w.train_rows) {
      EXPECT_EQ(train.rows(m), n) << m;
      ASSERT_TRUE(train.column(m, "label").has_value());
      EXPECT_LT(train.column(m, "label")->max().item<int64_t>(), w.classes);
      EXPECT_FALSE(train.column(m, "pair").has_value());
      for (const auto& s : w.spaces) {
        const bool covers = std::find(s.modalities.begin(), s.modalities.end(), m) != s.modalities.end();
        EXPECT_EQ(train.has(m, s.name), covers) << s.name << " " << m;
        if (covers) {  // unit rows
          at::Tensor x = train.embeddings(m, s.name, 0, 5);
          EXPECT_TRUE(at::allclose(x.norm(2, 1), at::ones({5}), 1e-4, 1e-4));
        }
      }
    }
    EXPECT_TRUE(train.column("text", "source").has_value());
    EmbeddingPool eval = EmbeddingPool::open(files.eval);
    EXPECT_TRUE(eval.has_prompts());
    EXPECT_EQ(eval.prompt_class().size(0), w.classes * w.prompts_per_class);
    for (const char* m : {"audio", "image", "point", "text"}) {
      EXPECT_EQ(eval.rows(m), w.eval_tuples);
      ASSERT_TRUE(eval.column(m, "pair").has_value());
      EXPECT_TRUE(at::equal(*eval.column(m, "pair"), at::arange(w.eval_tuples, at::kLong)));
      EXPECT_TRUE(at::equal(*eval.column(m, "label"), *eval.column("audio", "label")));  // true tuples share a class
    }
    // Mining reaches every modality and the trainer accepts the pools with the world's config.
    TupleSet tuples = mine_tuples(train, {});
    int64_t anchors = 0;
    for (const auto& [m, n] : w.train_rows) anchors += n;
    EXPECT_EQ(tuples.size(), anchors);
    TrainOptions o;
    o.threads = 1;
    o.projector_epochs = 1;
    o.router_epochs = 1;
    o.seed = 1;
    binding::BindingConfig small = config;
    small.projector_hidden = 16;
    small.heads_per_space = 1;
    NamedTensors state = train_binding(train, tuples, small, o);
    EXPECT_FALSE(state.empty());
  }
}

}  // namespace
}  // namespace omnibind::training
