// preprocess::clip_image_input: the shortest-side path equals ImageBind's image input bit for bit,
// the squash path is pil_resize_bicubic to S x S then the per-channel float32 normalisation, and the
// two 8-bit -> float conversions (torchvision ToTensor, transformers rescale) give their formulas.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_image.h"
#include "omnibind/preprocess/imagebind_image.h"
#include "omnibind/preprocess/pil_resize.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::preprocess;

const std::array<double, 3> kMean{0.48145466, 0.4578275, 0.40821073}, kStd{0.26862954, 0.26130258, 0.27577711};

media::Image pattern(int w, int h) {
  media::Image im;
  im.width = w;
  im.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      im.rgb.push_back(static_cast<uint8_t>((37 * x + 11 * y) % 256));
      im.rgb.push_back(static_cast<uint8_t>((255 - 30 * x) % 256));
      im.rgb.push_back(static_cast<uint8_t>((60 * y + 5 * x) % 256));
    }
  return im;
}

TEST(ClipImage, ShortestCropEqualsImageBindInput) {
  for (auto [w, h] : {std::pair{333, 100}, std::pair{50, 600}, std::pair{224, 224}, std::pair{7, 5}}) {
    const auto im = pattern(w, h);
    at::Tensor a = clip_image_input(im, 224, ImageResize::ShortestCrop, PixelScale::ToTensor, kMean, kStd);
    EXPECT_TRUE(at::equal(a, imagebind_image_input(im))) << w << "x" << h;
  }
}

TEST(ClipImage, SquashIsTheWholeImageResized) {
  const auto im = pattern(61, 17);
  at::Tensor a = clip_image_input(im, 32, ImageResize::Squash, PixelScale::ToTensor, kMean, kStd);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{3, 32, 32}));
  const auto r = pil_resize_bicubic(im, 32, 32);
  for (int y : {0, 13, 31})
    for (int x : {0, 7, 31})
      for (int c = 0; c < 3; ++c) {
        const float v = static_cast<float>(r.rgb[(static_cast<size_t>(y) * 32 + x) * 3 + c]) / 255.0f;
        EXPECT_EQ(a[c][y][x].item<float>(), (v - static_cast<float>(kMean[c])) / static_cast<float>(kStd[c]));
      }
  // Not the shortest-side crop for a non-square image.
  EXPECT_FALSE(at::equal(a, clip_image_input(im, 32, ImageResize::ShortestCrop, PixelScale::ToTensor, kMean, kStd)));
}

TEST(ClipImage, PixelScales) {
  media::Image im;
  im.width = 3;
  im.height = 1;
  im.rgb = {0, 0, 0, 128, 128, 128, 255, 255, 255};
  const std::array<double, 3> half{0.5, 0.5, 0.5};
  at::Tensor hf = clip_image_input(im, 3, ImageResize::Squash, PixelScale::HfRescale, half, half);  // 3x1 -> 3x3
  EXPECT_EQ(hf[0][0][0].item<float>(), -1.0f);
  EXPECT_EQ(hf[0][0][2].item<float>(), 1.0f);
  const float x128 = static_cast<float>(128.0 * (1.0 / 255.0));
  EXPECT_EQ(hf[1][1][1].item<float>(), (x128 - 0.5f) / 0.5f);
  at::Tensor tv = clip_image_input(im, 3, ImageResize::Squash, PixelScale::ToTensor, half, half);
  EXPECT_EQ(tv[1][1][1].item<float>(), (128.0f / 255.0f - 0.5f) / 0.5f);
  media::Image empty;
  EXPECT_NE(testkit::input_error_of([&] { clip_image_input(empty, 3, ImageResize::Squash, PixelScale::ToTensor, half, half); }),
            "");
}

}  // namespace
