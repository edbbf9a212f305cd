// Reduced-size real-data check of the zoo trainer: an audio-text expert trained on spoken digits
// (FSDD recordings 5-14 of every speaker) must classify the held-out test split (recordings 0-4,
// 300 clips) zero-shot from the digit words far above chance (0.1).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/experts/zoo/zoo_model.h"
#include "omnibind/media/audio.h"
#include "omnibind/training/zoo/zoo_trainer.h"
#include "testing/test_support.h"

namespace zoo = omnibind::experts::zoo;
namespace tz = omnibind::training::zoo;

namespace {

const std::vector<std::string> kWords{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
const std::vector<std::string> kSpeakers{"george", "jackson", "lucas", "nicolas", "theo", "yweweler"};

zoo::ZooConfig digits_config() {
  auto c = zoo::default_zoo_config({"audio", "text"}, 32, "AT");
  c.audio->channels = {8, 16, 32};
  c.audio->hidden = 64;
  c.text->buckets = 1024;
  c.text->width = 64;
  c.text->hidden = 64;
  return c;
}

// Audio inputs and labels of recordings [first, last] of every digit and speaker.
void load_fsdd(const zoo::ZooConfig& c, int first, int last, at::Tensor& audio, at::Tensor& labels) {
  std::vector<at::Tensor> xs;
  std::vector<int64_t> ys;
  for (int d = 0; d < 10; ++d)
    for (auto& s : kSpeakers)
      for (int i = first; i <= last; ++i) {
        std::string path = omnibind::testkit::shared_path("data/fsdd/" + std::to_string(d) + "_" + s + "_" +
                                                          std::to_string(i) + ".wav");
        xs.push_back(zoo::zoo_audio_input(omnibind::media::decode_audio_file(path), *c.audio, path));
        ys.push_back(d);
      }
  audio = at::stack(xs);
  labels = at::tensor(ys, at::kLong);
}

}  // namespace

TEST(ZooDigits, SpokenDigitZeroShotFarAboveChance) {
  OMNIBIND_REQUIRE_SHARED();
  at::set_num_threads(1);
  auto c = digits_config();
  at::Tensor train_audio, train_labels, test_audio, test_labels;
  load_fsdd(c, 5, 14, train_audio, train_labels);
  load_fsdd(c, 0, 4, test_audio, test_labels);
  const std::vector<std::string> templates{"{}", "the spoken digit {}", "someone says {}", "a recording of the word {}"};
  std::vector<at::Tensor> texts;
  for (int64_t i = 0; i < train_labels.size(0); ++i) {
    std::string t = templates[i % templates.size()];
    t.replace(t.find("{}"), 2, kWords[train_labels[i].item<int64_t>()]);
    texts.push_back(zoo::zoo_text_input(t, *c.text));
  }
  tz::ZooPairedData data;
  data.inputs["audio"] = train_audio;
  data.inputs["text"] = at::stack(texts);
  data.group = train_labels;
  tz::ZooTrainOptions o;
  o.epochs = 15;
  o.batch = 64;
  o.lr = 2e-3;
  o.seed = 1;
  auto w = tz::train_zoo_expert(c, data, o);
  auto model = zoo::ZooModel::bind(c, w, "digits");
  std::vector<at::Tensor> prompts;
  for (auto& word : kWords) prompts.push_back(zoo::zoo_text_input(word, *c.text));
  at::NoGradGuard ng;
  at::Tensor pred = at::matmul(model.forward("audio", test_audio), model.forward("text", at::stack(prompts)).t()).argmax(1);
  const double acc = pred.eq(test_labels).to(at::kDouble).mean().item<double>();
  std::printf("zero-shot spoken-digit accuracy (300 held-out clips): %.3f\n", acc);
  EXPECT_GT(acc, 0.5);
}
