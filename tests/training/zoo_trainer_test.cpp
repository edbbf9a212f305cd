// Zoo expert training: learns a toy image-text space well above chance, deterministic in the seed,
// handles items with missing modalities, rejects data that does not fit.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/experts/zoo/zoo_model.h"
#include "omnibind/training/zoo/zoo_trainer.h"

namespace zoo = omnibind::experts::zoo;
namespace tz = omnibind::training::zoo;

namespace {

const std::vector<std::string> kNames{"red circle", "blue square", "green stripes", "yellow dots"};

zoo::ZooConfig toy_config() {
  auto c = zoo::default_zoo_config({"image", "point", "text"}, 16, "IPT");
  c.image->size = 8;
  c.image->channels = {8};
  c.image->hidden = 32;
  c.point->points = 16;
  c.point->widths = {32, 64};
  c.point->hidden = 32;
  c.text->buckets = 512;
  c.text->max_tokens = 32;
  c.text->width = 32;
  c.text->hidden = 32;
  return c;
}

// n items of 4 classes: an 8x8 image (class prototype + noise), a 16-point cloud (class-scaled
// blob + noise) and a caption naming the class; labels in `labels`.
tz::ZooPairedData toy_data(int64_t n, uint64_t seed, at::Tensor& labels) {
  auto c = toy_config();
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Generator pg = at::detail::createCPUGenerator(12345);  // prototypes fixed across splits
  at::Tensor protos = at::empty({4, 1, 8, 8});
  protos.normal_(0.0, 1.0, pg);
  at::Tensor shapes = at::empty({4, 16, 3});
  shapes.normal_(0.0, 1.0, pg);
  labels = at::arange(n, at::kLong).remainder(4);
  at::Tensor noise = at::empty({n, 1, 8, 8});
  noise.normal_(0.0, 0.7, g);
  at::Tensor pnoise = at::empty({n, 16, 3});
  pnoise.normal_(0.0, 0.3, g);
  std::vector<at::Tensor> texts;
  for (int64_t i = 0; i < n; ++i)
    texts.push_back(zoo::zoo_text_input("a photo of a " + kNames[labels[i].item<int64_t>()], *c.text));
  tz::ZooPairedData d;
  d.inputs["image"] = protos.index_select(0, labels) + noise;
  d.inputs["point"] = shapes.index_select(0, labels) + pnoise;
  d.inputs["text"] = at::stack(texts);
  d.present["point"] = at::arange(n).div(4, "floor").remainder(2).eq(0);  // half the items (all classes): image-text only
  d.group = labels;
  return d;
}

double zero_shot_accuracy(const zoo::ZooWeights& w, const std::string& modality) {
  auto c = toy_config();
  auto model = zoo::ZooModel::bind(c, w, "toy");
  at::Tensor labels;
  auto test = toy_data(200, 99, labels);
  std::vector<at::Tensor> prompts;
  for (auto& name : kNames) prompts.push_back(zoo::zoo_text_input(name, *c.text));
  at::NoGradGuard ng;
  at::Tensor t = model.forward("text", at::stack(prompts));
  at::Tensor x = model.forward(modality, test.inputs.at(modality));
  at::Tensor pred = at::matmul(x, t.t()).argmax(1);
  return pred.eq(labels).to(at::kDouble).mean().item<double>();
}

}  // namespace

TEST(ZooTrainer, LearnsToyImagePointTextSpaceDeterministically) {
  at::set_num_threads(1);
  auto c = toy_config();
  at::Tensor labels;
  auto data = toy_data(256, 1, labels);
  tz::ZooTrainOptions o;
  o.epochs = 12;
  o.batch = 32;
  o.lr = 3e-3;
  o.seed = 5;
  int calls = 0;
  double first = 0, last = 0;
  auto w = tz::train_zoo_expert(c, data, o, [&](const tz::ZooTrainProgress& p) {
    if (p.epoch == 1) first = p.loss;
    last = p.loss;
    ++calls;
    EXPECT_GT(p.temperature, 0.0);
  });
  EXPECT_EQ(calls, 12);
  EXPECT_LT(last, first * 0.7) << first << " -> " << last;
  // Chance is 0.25 for 4 classes.
  EXPECT_GT(zero_shot_accuracy(w, "image"), 0.9);
  EXPECT_GT(zero_shot_accuracy(w, "point"), 0.9);
  auto w2 = tz::train_zoo_expert(c, data, o);
  for (auto& [name, t] : w) EXPECT_TRUE(t.equal(w2.at(name))) << name;
  o.seed = 6;
  auto w3 = tz::train_zoo_expert(c, data, o);
  EXPECT_FALSE(w.at("image.fc2.weight").equal(w3.at("image.fc2.weight")));
}

TEST(ZooTrainer, RejectsDataThatDoesNotFit) {
  auto c = toy_config();
  at::Tensor labels;
  auto data = toy_data(16, 1, labels);
  tz::ZooTrainOptions o;
  o.epochs = 1;
  auto bad = data;
  bad.inputs["audio"] = at::zeros({16, 1, 48, 32});
  EXPECT_THROW(tz::train_zoo_expert(c, bad, o), omnibind::InputError);  // no audio tower
  bad = data;
  bad.inputs["text"] = bad.inputs["text"].narrow(0, 0, 8);
  EXPECT_THROW(tz::train_zoo_expert(c, bad, o), omnibind::InputError);  // row counts differ
  bad = data;
  bad.inputs.erase("point");
  bad.inputs.erase("text");
  EXPECT_THROW(tz::train_zoo_expert(c, bad, o), omnibind::InputError);  // one modality
}
