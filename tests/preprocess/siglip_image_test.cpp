// SigLIP image input against the siglip_mini fixtures: every pixel value identical to the
// reference's pixel_values (PIL bicubic squash to 384x384 is integer-exact; /255 in double then
// float32; (x - 0.5) / 0.5 in float32), plus the reference's channel-axis guess for 1- and 3-row images.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "omnibind/common/error.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/pil_resize.h"
#include "omnibind/preprocess/siglip_image.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::preprocess {
namespace {

TEST(SiglipImage, PixelValuesIdenticalToTheReference) {
  OMNIBIND_REQUIRE_SHARED();
  for (const std::string folder : {"large16", "so400m14"}) {
    const std::string dir = testkit::shared_path("fixtures/siglip_mini/" + folder + "/");
    const auto st = tensor_io::read_safetensors(dir + "expected_vision.safetensors");
    for (const std::string file : {"dog_image.jpg", "train.jpeg", "wide_car_333x100.png", "dog_gray_alpha_300x400.png",
                                    "very_wide_600x50.png", "tiny_rgb_7x5.png"}) {
      const std::string name = file.substr(0, file.rfind('.'));
      const at::Tensor got = siglip_image_input(media::decode_image_file(dir + "inputs/" + file));
      const at::Tensor want = tensor_io::to_tensor(st.tensors.at(name + "/pixel_values"));
      ASSERT_EQ(got.sizes(), want.sizes()) << name;
      const int64_t differ = got.ne(want).sum().item<int64_t>();
      std::printf("[ siglip pixels ] %-8s %-24s differing values %lld, max |diff| %.3g\n", folder.c_str(), name.c_str(),
                  static_cast<long long>(differ), (got - want).abs().max().item<float>());
      EXPECT_EQ(differ, 0) << folder << " " << name;
    }
  }
}

media::Image pattern(int w, int h) {
  media::Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  return img;
}

TEST(SiglipImage, ValuesAreTheReferenceFormulaOfTheResizedBytes) {
  const media::Image img = pattern(50, 20);
  const at::Tensor got = siglip_image_input(img, 32);
  const media::Image r = pil_resize_bicubic(img, 32, 32);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 32 * 32; i += 97) {
      const float x = static_cast<float>(r.rgb[3 * i + c] * (1.0 / 255.0));
      EXPECT_EQ(got[c][i / 32][i % 32].item<float>(), (x - 0.5f) / 0.5f);
    }
  EXPECT_EQ(got.min().item<float>() >= -1.0f && got.max().item<float>() <= 1.0f, true);
}

TEST(SiglipImage, OnePixelHighImagesFailLikeTheReference) {
  for (int w : {1, 3, 100}) {
    std::string msg = testkit::input_error_of([&] { siglip_image_input(pattern(w, 1)); });
    EXPECT_NE(msg.find("1 pixel high"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(siglip_image_input(pattern(1, 2), 16));  // 1 wide is fine (channels-last guessed)
}

TEST(SiglipImage, ThreePixelHighImagesAreReadAsColourPlanesLikeTheReference) {
  // Rows of equal bytes: the reference turns row c into colour plane c, so three identical rows give
  // three identical planes, although every pixel is colourful.
  media::Image img = pattern(40, 1);
  media::Image three;
  three.width = 40;
  three.height = 3;
  for (int r = 0; r < 3; ++r) three.rgb.insert(three.rgb.end(), img.rgb.begin(), img.rgb.end());
  const at::Tensor got = siglip_image_input(three, 24);
  ASSERT_EQ(got.sizes(), (at::IntArrayRef{3, 24, 24}));
  EXPECT_TRUE(at::equal(got[0], got[1]));
  EXPECT_TRUE(at::equal(got[1], got[2]));
  // A 4-row image of the same content keeps its colours (normal channels-last path).
  media::Image four = three;
  four.height = 4;
  four.rgb.insert(four.rgb.end(), img.rgb.begin(), img.rgb.end());
  const at::Tensor normal = siglip_image_input(four, 24);
  EXPECT_FALSE(at::equal(normal[0], normal[1]));
}

}  // namespace
}  // namespace omnibind::preprocess
