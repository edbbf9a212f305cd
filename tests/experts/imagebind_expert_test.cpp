// The "imagebind" expert end to end: fixture files -> preprocess (our decoders, resampler, fbank,
// tokenizer) -> encode, against the reference's embeddings; and weights.pt == weights.safetensors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts;

namespace {
std::string fx(const std::string& name) { return testkit::shared_path("fixtures/imagebind_mini/" + name); }

std::unique_ptr<Expert> mini(const std::string& weights, const std::string& precision = "fp32") {
  ExpertOptions o;
  o.weights = fx(weights);
  o.config = fx("config.json");
  o.bpe_vocab = fx("bpe_simple_vocab_16e6.txt.gz");
  o.precision = precision;
  return create_expert("imagebind", o);
}

at::Tensor expected(const std::string& key) {
  auto f = tensor_io::read_safetensors(fx("expected_model.safetensors"));
  auto t = tensor_io::to_tensor(f.tensors.at(key)).clone();
  return t / t.norm(2, {-1}, true);
}

at::Tensor row_cosines(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  return (a64 * b64).sum(-1) / (a64.norm(2, {-1}) * b64.norm(2, {-1}));
}

at::Tensor embed_files(const Expert& e, Modality m, const std::vector<std::string>& files) {
  std::vector<at::Tensor> batch;
  for (auto& f : files) batch.push_back(e.preprocess(m, MediaInput::from_path(fx("inputs/" + f))));
  return e.encode(m, at::stack(batch));
}
}  // namespace

TEST(ImageBindExpert, DescribesItself) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = mini("weights.safetensors");
  EXPECT_EQ(e->name(), "imagebind");
  EXPECT_EQ(e->key(), "IB");
  EXPECT_EQ(e->dim(), 32);
  EXPECT_TRUE(e->covers(Modality::Image) && e->covers(Modality::Audio) && e->covers(Modality::Text));
  EXPECT_FALSE(e->covers(Modality::Point));
  EXPECT_THROW(e->preprocess(Modality::Point, MediaInput::from_path("x.ply")), InputError);
}

TEST(ImageBindExpert, ImagesEndToEndMatchTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = mini("weights.pt");
  auto got = embed_files(*e, Modality::Image,
                         {"dog_image.jpg", "car_image.jpg", "bird_image.jpg", "wide_car_333x100.png",
                          "dog_gray_alpha_300x400.png"});
  EXPECT_LT((got.norm(2, {-1}) - 1).abs().max().item<double>(), 1e-5);
  auto cos = row_cosines(got, expected("vision/embedding"));
  std::printf("image end-to-end cosines: %s\n", c10::str(cos).c_str());
  EXPECT_GE(cos.min().item<double>(), 0.99999);
}

TEST(ImageBindExpert, AudioEndToEndMatchesTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = mini("weights.pt");
  auto got = embed_files(*e, Modality::Audio,
                         {"dog_audio.wav", "car_audio.wav", "bird_audio.wav", "fsdd_0_george_0.wav",
                          "stereo_car_bird_44k.wav"});
  auto cos = row_cosines(got, expected("audio/embedding"));
  std::printf("audio end-to-end min cosine: %.9f\n", cos.min().item<double>());
  // The melspec differs from the reference by float32 noise (<= 4e-4); it carries through.
  EXPECT_GE(cos.min().item<double>(), 0.9999);
}

TEST(ImageBindExpert, TextEndToEndMatchesTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = mini("weights.pt");
  auto inputs = nlohmann::json::parse(read_file_bytes(fx("inputs.json")));
  std::vector<at::Tensor> batch;
  for (auto& t : inputs["texts"]) batch.push_back(e->preprocess(Modality::Text, MediaInput::from_text(t["text"])));
  auto got = e->encode(Modality::Text, at::stack(batch));
  auto cos = row_cosines(got, expected("text/embedding"));
  std::printf("text end-to-end min cosine: %.9f\n", cos.min().item<double>());
  EXPECT_GE(cos.min().item<double>(), 0.99999);
}

TEST(ImageBindExpert, TorchAndSafetensorsWeightsGiveTheSameEmbeddings) {
  OMNIBIND_REQUIRE_SHARED();
  auto a = mini("weights.pt"), b = mini("weights.safetensors");
  auto x = a->preprocess(Modality::Image, MediaInput::from_path(fx("inputs/car_image.jpg"))).unsqueeze(0);
  EXPECT_TRUE(at::equal(a->encode(Modality::Image, x), b->encode(Modality::Image, x)));
}

TEST(ImageBindExpert, Bf16ExpertStaysCloseToFp32) {
  OMNIBIND_REQUIRE_SHARED();
  auto a = mini("weights.safetensors"), b = mini("weights.safetensors", "bf16");
  auto x = a->preprocess(Modality::Image, MediaInput::from_path(fx("inputs/bird_image.jpg"))).unsqueeze(0);
  auto ya = a->encode(Modality::Image, x), yb = b->encode(Modality::Image, x);
  EXPECT_EQ(yb.scalar_type(), at::kFloat);
  EXPECT_GE(row_cosines(ya, yb).min().item<double>(), 0.999);
}

TEST(ImageBindExpert, BadInputsAreOneLineInputErrors) {
  OMNIBIND_REQUIRE_SHARED();
  auto e = mini("weights.safetensors");
  auto dir = testkit::make_temp_dir("ibe");
  write_bytes_atomically(dir + "/junk.jpg", "not an image");
  for (auto [m, path] : {std::pair{Modality::Image, dir + "/junk.jpg"}, std::pair{Modality::Audio, dir + "/junk.jpg"},
                         std::pair{Modality::Image, dir + "/missing.png"}}) {
    try {
      e->preprocess(m, MediaInput::from_path(path));
      ADD_FAILURE() << "no error for " << path;
    } catch (const InputError& err) {
      std::string msg = err.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(e->preprocess(Modality::Text, MediaInput::from_text("bad \xff\xfe utf8")), InputError);
  EXPECT_THROW(e->encode(Modality::Image, at::zeros({1, 3, 100, 100})), InputError);
  EXPECT_THROW(e->encode(Modality::Text, at::full({1, 77}, 50000, at::kLong)), InputError);
  ExpertOptions o;
  o.weights = fx("weights.safetensors");
  o.config = fx("config.json");
  o.precision = "fp8";
  EXPECT_THROW(create_expert("imagebind", o), InputError);
}
