// Evaluation pools on disk: the synthetic world written in the pool format reads back unchanged, and
// damaged pools fail with one InputError naming the file and key.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::evaluation;
namespace fs = std::filesystem;

namespace {
SyntheticWorld small_world() {
  SyntheticWorldOptions o;
  o.train_rows = 40;
  o.eval_tuples = 30;
  return make_synthetic_world(o);
}
std::string expect_input_error(const fs::path& dir) {
  try {
    load_eval_set(dir);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << dir;
  return "";
}
}  // namespace

TEST(EvalPool, SyntheticPoolsRoundTrip) {
  auto w = small_world();
  const fs::path dir = testkit::make_temp_dir("eval_pool");
  write_synthetic_pools(w, dir / "train", dir / "eval");
  EvalSet s = load_eval_set(dir / "eval");
  EXPECT_EQ(s.classes, w.classes);
  EXPECT_EQ(s.num_classes, 16);
  ASSERT_EQ(s.modalities.size(), 4u);
  for (auto& [m, items] : w.eval.modalities) {
    for (auto& [e, t] : items.experts) EXPECT_TRUE(at::equal(s.modalities.at(m).experts.at(e), t)) << m << "/" << e;
    EXPECT_TRUE(at::equal(s.modalities.at(m).pair, items.pair));
    EXPECT_TRUE(at::equal(s.modalities.at(m).label, items.label));
  }
  EXPECT_TRUE(at::equal(s.modalities.at("text").source, w.eval.modalities.at("text").source));
  EXPECT_TRUE(at::equal(s.prompt_class, w.eval.prompt_class));
  EXPECT_TRUE(at::equal(s.prompts.at("AT_B"), w.eval.prompts.at("AT_B")));
  // The training pool has no pair ids and no prompts.
  EvalSet t = load_eval_set(dir / "train");
  EXPECT_FALSE(t.modalities.at("audio").pair.defined());
  EXPECT_FALSE(t.prompt_class.defined());
  EXPECT_EQ(t.modalities.at("audio").rows(), 40);
  for (auto& e : fs::directory_iterator(dir))  // nothing but the two pools
    EXPECT_TRUE(e.path().filename() == "train" || e.path().filename() == "eval") << e.path();
}

TEST(EvalPool, DamagedPoolsNameTheFileAndKey) {
  auto w = small_world();
  const fs::path dir = testkit::make_temp_dir("eval_pool_bad");
  write_synthetic_pools(w, dir / "train", dir / "eval");
  EXPECT_NE(expect_input_error(dir / "nothing").find("no manifest.json"), std::string::npos);

  // An expert the manifest lists for audio is missing from the audio shard (the pool writer's first and only one).
  const std::string audio_shard = "audio-0.safetensors";
  auto audio = w.eval.modalities.at("audio");
  tensor_io::write_tensors((dir / "eval" / audio_shard).string(),
                           {{"AT_A", audio.experts.at("AT_A")}, {"pair", audio.pair}});
  std::string msg = expect_input_error(dir / "eval");
  EXPECT_NE(msg.find(audio_shard), std::string::npos) << msg;
  EXPECT_NE(msg.find("'AT_B'"), std::string::npos) << msg;

  // NaN rows.
  at::Tensor bad = audio.experts.at("AT_B").clone();
  bad[3][1] = NAN;
  tensor_io::write_tensors((dir / "eval" / audio_shard).string(),
                           {{"AT_A", audio.experts.at("AT_A")}, {"AT_B", bad}, {"pair", audio.pair}});
  msg = expect_input_error(dir / "eval");
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;

  // Row counts that disagree within a modality.
  tensor_io::write_tensors((dir / "eval" / audio_shard).string(),
                           {{"AT_A", audio.experts.at("AT_A")}, {"AT_B", audio.experts.at("AT_B").slice(0, 0, 10)}});
  msg = expect_input_error(dir / "eval");
  EXPECT_NE(msg.find("rows"), std::string::npos) << msg;

  // Broken manifest.
  write_bytes_atomically((dir / "eval" / "manifest.json").string(), "{\"format\": \"omnibind-pool\", \"experts\": 3");
  msg = expect_input_error(dir / "eval");
  EXPECT_NE(msg.find("manifest.json"), std::string::npos) << msg;
}
