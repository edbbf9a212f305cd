// Zoo experts: config JSON, weights file round trip, registry, preprocessing, thread-safe encode.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/experts/zoo/zoo_expert.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/media/audio.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace zoo = omnibind::experts::zoo;
using omnibind::InputError;
using omnibind::experts::MediaInput;
using omnibind::experts::Modality;

namespace {

zoo::ZooConfig small_config() {
  auto c = zoo::default_zoo_config({"audio", "image", "point", "text"}, 16, "AIPT");
  c.audio->channels = {4, 8};
  c.image->channels = {4, 8};
  c.point->widths = {8, 16};
  c.text->buckets = 256;
  c.text->max_tokens = 16;
  return c;
}

std::string write_small_expert(const std::string& dir) {
  auto c = small_config();
  std::string path = dir + "/aipt.safetensors";
  zoo::write_zoo_file(path, c, zoo::init_zoo_weights(c, 7));
  return path;
}

}  // namespace

TEST(ZooConfig, JsonRoundTripAndValidation) {
  auto c = small_config();
  auto back = zoo::zoo_config_from_json(zoo::zoo_config_to_json(c), "x");
  EXPECT_EQ(zoo::zoo_config_to_json(back), zoo::zoo_config_to_json(c));
  EXPECT_EQ(back.modalities(), (std::vector<std::string>{"audio", "image", "point", "text"}));
  EXPECT_THROW(zoo::zoo_config_from_json("{", "x"), InputError);
  EXPECT_THROW(zoo::zoo_config_from_json(R"({"format":"omnibind-zoo","key":"K","dim":8,"modalities":{"smell":{}}})", "x"),
               InputError);
  EXPECT_THROW(zoo::zoo_config_from_json(
                   R"({"format":"omnibind-zoo","key":"K","dim":8,"modalities":{"audio":{"mel_bins":30}}})", "x"),
               InputError);
  EXPECT_THROW(zoo::default_zoo_config({"video"}, 8, "K"), InputError);
}

TEST(ZooExpert, FileRoundTripThroughRegistry) {
  auto dir = omnibind::testkit::make_temp_dir("zoo_expert");
  auto c = small_config();
  auto w = zoo::init_zoo_weights(c, 7);
  EXPECT_TRUE(zoo::init_zoo_weights(c, 7).at("text.fc1.weight").equal(w.at("text.fc1.weight")));
  EXPECT_FALSE(zoo::init_zoo_weights(c, 8).at("text.fc1.weight").equal(w.at("text.fc1.weight")));
  std::string path = write_small_expert(dir);
  omnibind::experts::ExpertOptions o;
  o.weights = path;
  auto e = omnibind::experts::create_expert("zoo", o);
  EXPECT_EQ(e->name(), "zoo");
  EXPECT_EQ(e->key(), "AIPT");
  EXPECT_EQ(e->dim(), 16);
  EXPECT_EQ(e->modalities().size(), 4u);
  zoo::ZooExpert mem(c, w);
  at::Tensor t = at::stack({e->preprocess(Modality::Text, MediaInput::from_text("a dog barks")),
                            e->preprocess(Modality::Text, MediaInput::from_text("seven"))});
  at::Tensor a = e->encode(Modality::Text, t);
  EXPECT_TRUE(a.equal(mem.encode(Modality::Text, t)));
  EXPECT_NEAR(a.norm(2, 1).min().item<float>(), 1.0f, 1e-5);
  EXPECT_THROW(e->encode(Modality::Text, at::zeros({2, 3}, at::kLong)), InputError);
}

TEST(ZooExpert, RejectsBadFiles) {
  auto dir = omnibind::testkit::make_temp_dir("zoo_bad");
  omnibind::experts::ExpertOptions o;
  o.weights = dir + "/missing.safetensors";
  EXPECT_THROW(omnibind::experts::create_expert("zoo", o), InputError);
  auto c = small_config();
  auto w = zoo::init_zoo_weights(c, 1);
  // A plain safetensors file without zoo_config, and one with a tensor of the wrong shape.
  omnibind::tensor_io::write_tensors(dir + "/plain.safetensors", {{"x", at::zeros({2})}});
  o.weights = dir + "/plain.safetensors";
  EXPECT_THROW(omnibind::experts::create_expert("zoo", o), InputError);
  w["image.fc2.weight"] = at::zeros({3, 3});
  EXPECT_THROW(zoo::write_zoo_file(dir + "/bad.safetensors", c, w), InputError);
  try {
    zoo::ZooModel::bind(c, w, "f");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("image.fc2.weight"), std::string::npos) << e.what();
  }
}

TEST(ZooInputs, TextPointImageAudioShapes) {
  auto c = small_config();
  auto ids = zoo::zoo_text_features("Seven, SEVEN!", 256);
  EXPECT_EQ(ids, zoo::zoo_text_features("seven seven", 256));  // case and punctuation do not matter
  at::Tensor t = zoo::zoo_text_input("", *c.text);
  EXPECT_EQ(t.sum().item<int64_t>(), 0);

  omnibind::media::PointCloud pc;
  for (int i = 0; i < 10; ++i) pc.xyz.insert(pc.xyz.end(), {100.0f + i, 50.0f, -3.0f * i});
  pc.rgb.assign(pc.xyz.size(), 0.4f);
  at::Tensor p = zoo::zoo_point_input(pc, *c.point, "cloud");
  EXPECT_EQ(p.sizes(), at::IntArrayRef({c.point->points, 3}));
  EXPECT_NEAR(p.norm(2, 1).max().item<float>(), 1.0f, 1e-5);

  omnibind::media::Image im;
  im.width = 40;
  im.height = 30;
  im.rgb.assign(40 * 30 * 3, 255);
  at::Tensor x = zoo::zoo_image_input(im, *c.image, "img");
  EXPECT_EQ(x.sizes(), at::IntArrayRef({1, 28, 28}));
  EXPECT_NEAR(x.min().item<float>(), 1.0f, 1e-4);  // (1 - 0.5) / 0.5

  omnibind::media::Audio au;
  au.sample_rate = 8000;
  au.channels.assign(1, std::vector<float>(4000));
  for (size_t i = 0; i < 4000; ++i) au.channels[0][i] = 0.3f * std::sin(0.3f * i);
  at::Tensor s = zoo::zoo_audio_input(au, *c.audio, "tone");
  EXPECT_EQ(s.sizes(), at::IntArrayRef({1, c.audio->frames, c.audio->mel_bins}));
  EXPECT_NEAR(s.mean().item<float>(), 0.0f, 1e-4);
  EXPECT_NEAR(s.std(false).item<float>(), 1.0f, 1e-3);  // standardised per clip
  au.channels.clear();
  EXPECT_THROW(zoo::zoo_audio_input(au, *c.audio, "empty"), InputError);
}

TEST(ZooExpert, EncodesRealFilesDeterministicallyFromThreads) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("zoo_files");
  omnibind::experts::ExpertOptions o;
  o.weights = write_small_expert(dir);
  auto e = omnibind::experts::create_expert("zoo", o);
  std::string wav = omnibind::testkit::shared_path("data/fsdd/7_theo_3.wav");
  std::string pcd = omnibind::testkit::shared_path("data/modelnet10_test/chair/chair_0890.pcd");
  std::string jpg = omnibind::testkit::shared_path("data/cifar10_test_small/cat/0000.jpg");
  at::Tensor ab = at::stack({e->preprocess(Modality::Audio, MediaInput::from_path(wav))});
  at::Tensor pb = at::stack({e->preprocess(Modality::Point, MediaInput::from_path(pcd))});
  at::Tensor ib = at::stack({e->preprocess(Modality::Image, MediaInput::from_path(jpg))});
  at::Tensor ref_a = e->encode(Modality::Audio, ab), ref_p = e->encode(Modality::Point, pb),
             ref_i = e->encode(Modality::Image, ib);
  EXPECT_TRUE(e->preprocess(Modality::Audio, MediaInput::from_bytes(omnibind::read_file_bytes(wav), "x.wav"))
                  .equal(ab[0]));
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      bool good = true;
      for (int r = 0; r < 5; ++r) {
        good = good && e->encode(Modality::Audio, ab).equal(ref_a) && e->encode(Modality::Point, pb).equal(ref_p) &&
               e->encode(Modality::Image, ib).equal(ref_i);
      }
      ok[t] = good;
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(ok[t]) << "thread " << t;
  EXPECT_THROW(e->preprocess(Modality::Audio, MediaInput::from_path(jpg)), InputError);
}
