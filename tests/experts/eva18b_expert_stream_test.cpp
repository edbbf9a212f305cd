// The eva_clip_18b expert streams its vision tower from the mapped file (experts/eva18b_stream) when
// the blocks would not fit in memory (OMNIBIND_STREAM_VISION=auto), or always / never on request:
// streamed and resident experts give bit-identical embeddings at fp32 on the mini model, from the
// released .fp16.pt-style file and from Hugging Face shards, and texts are unaffected.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/experts/eva_clip/eva_clip_expert.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "experts/eva_clip_18b_hf_shards.h"
#include "experts/eva_clip_fixture.h"
#include "testing/test_support.h"

namespace {
using namespace omnibind;

std::string fx(const std::string& rel) { return testkit::shared_path("fixtures/eva_clip_18b_mini/" + rel); }

struct StreamMode {
  explicit StreamMode(const char* mode) { ::setenv("OMNIBIND_STREAM_VISION", mode, 1); }
  ~StreamMode() { ::unsetenv("OMNIBIND_STREAM_VISION"); }
};

std::unique_ptr<experts::Expert> expert(const std::string& weights, const char* mode) {
  StreamMode m(mode);
  experts::ExpertOptions o;
  o.weights = weights;
  o.config = fx("config.json");
  o.bpe_vocab = testkit::EvaClipFixture::bpe();
  return experts::eva_clip::make_eva_clip_18b_expert(o);
}

}  // namespace

TEST(EvaClip18bExpertStream, StreamedAndResidentExpertsAgreeBitForBit) {
  OMNIBIND_REQUIRE_SHARED();
  testkit::EvaClipFixture f("eva_clip_18b_mini");
  auto dir = testkit::make_temp_dir("eva18b_expert_stream");
  std::vector<std::pair<std::string, at::Tensor>> t16;
  for (auto& [n, t] : f.tensors()) t16.emplace_back(n, n == "logit_scale" ? t : t.to(at::kHalf));
  tensor_io::write_torch_checkpoint(dir + "/EVA_CLIP_18B_psz14_s6B.fp16.pt", t16);
  std::filesystem::create_directories(dir + "/hf");
  testkit::write_eva18b_hf_shards(fx("weights.safetensors"), f.config.vision.width, f.config.text.width, dir + "/hf", 3);

  std::vector<at::Tensor> ids;
  {
    auto e = expert(dir + "/hf", "never");
    for (const auto& t : f.inputs.texts) ids.push_back(e->preprocess(experts::Modality::Text, experts::MediaInput::from_text(t)));
  }
  const at::Tensor px = f.pixels(), text = at::stack(ids);
  for (const std::string& weights : {dir + "/EVA_CLIP_18B_psz14_s6B.fp16.pt", dir + "/hf"}) {
    auto resident = expert(weights, "never");
    auto streamed = expert(weights, "always");
    auto automatic = expert(weights, "auto");  // a mini model fits: resident
    const at::Tensor a = resident->encode(experts::Modality::Image, px);
    EXPECT_TRUE(at::equal(a, streamed->encode(experts::Modality::Image, px))) << weights;
    EXPECT_TRUE(at::equal(a, streamed->encode(experts::Modality::Image, px))) << weights << " (second pass)";
    EXPECT_TRUE(at::equal(a, automatic->encode(experts::Modality::Image, px))) << weights;
    EXPECT_TRUE(at::equal(resident->encode(experts::Modality::Text, text), streamed->encode(experts::Modality::Text, text)));
  }
  EXPECT_NE(testkit::input_error_of([&] { expert(dir + "/hf", "sometimes"); }).find("OMNIBIND_STREAM_VISION"), std::string::npos);
}
