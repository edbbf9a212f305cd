// Vision input parity: PIL-exact bicubic resize + centre crop + CLIP normalisation against
// load_and_transform_vision_data. Compared at the uint8 level (the expected float tensor is
// inverted back to u8 steps), and as floats.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "fixture_util.h"
#include "omnibind/common/error.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/imagebind_image.h"
#include "omnibind/preprocess/pil_resize.h"

namespace omnibind::preprocess {
namespace {

TEST(ImagebindImage, GeometryMatchesTorchvision) {
  EXPECT_EQ(shortest_side_resize_dims(640, 855, 224), (std::pair<int, int>{224, 299}));
  EXPECT_EQ(shortest_side_resize_dims(640, 360, 224), (std::pair<int, int>{398, 224}));
  EXPECT_EQ(shortest_side_resize_dims(333, 100, 224), (std::pair<int, int>{745, 224}));
  EXPECT_EQ(shortest_side_resize_dims(300, 400, 224), (std::pair<int, int>{224, 298}));
  EXPECT_EQ(center_crop_offsets(224, 299, 224), (std::pair<int, int>{0, 38}));   // round(37.5) = 38
  EXPECT_EQ(center_crop_offsets(745, 224, 224), (std::pair<int, int>{260, 0}));  // round(260.5) = 260
  EXPECT_EQ(center_crop_offsets(398, 224, 224), (std::pair<int, int>{87, 0}));
}

TEST(ImagebindImage, MatchesReferenceForEveryFixtureImage) {
  OMNIBIND_REQUIRE_SHARED();
  const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  const float stdv[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  for (const std::string file : {"dog_image.jpg", "car_image.jpg", "bird_image.jpg", "wide_car_333x100.png",
                                  "dog_gray_alpha_300x400.png"}) {
    const std::string name = file.substr(0, file.rfind('.'));
    const media::Image img = media::decode_image_file(testfix::ib_path("inputs/" + file));
    const at::Tensor got = imagebind_image_input(img);
    const at::Tensor want = testfix::expected("expected_vision.safetensors", "vision/" + name);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    // Back to u8 steps: v = round((x * std + mean) * 255).
    int64_t differ = 0, worst = 0;
    const float* g = got.data_ptr<float>();
    const float* w = want.data_ptr<float>();
    const int64_t per = 224 * 224;
    for (int64_t i = 0; i < 3 * per; ++i) {
      const int c = static_cast<int>(i / per);
      const long gv = std::lround((g[i] * stdv[c] + mean[c]) * 255.0f);
      const long wv = std::lround((w[i] * stdv[c] + mean[c]) * 255.0f);
      const long d = std::labs(gv - wv);
      differ += d != 0;
      worst = std::max<int64_t>(worst, d);
    }
    const double identical = 1.0 - static_cast<double>(differ) / (3 * per);
    std::printf("[ image parity ] %-24s identical %.6f  max u8 step %ld  max |float diff| %.3g\n", name.c_str(),
                identical, static_cast<long>(worst), (got - want).abs().max().item<float>());
    EXPECT_LE(worst, 1) << name;
    EXPECT_GE(identical, 0.99) << name;
  }
}

TEST(ImagebindImage, CroppedResizeEqualsCropOfFullResize) {
  media::Image img;
  img.width = 37;
  img.height = 23;
  img.rgb.resize(37 * 23 * 3);
  uint32_t state = 12345;
  for (auto& v : img.rgb) v = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
  const int sizes[][2] = {{11, 7}, {80, 50}, {37, 60}, {90, 23}, {37, 23}};
  for (const auto& wh : sizes) {
    const media::Image full = pil_resize_bicubic(img, wh[0], wh[1]);
    const int cw = std::min(wh[0], 9), ch = std::min(wh[1], 6);
    const int left = (wh[0] - cw) / 2, top = (wh[1] - ch) / 3;
    const media::Image part = pil_resize_bicubic_crop(img, wh[0], wh[1], left, top, cw, ch);
    ASSERT_EQ(part.width, cw);
    ASSERT_EQ(part.height, ch);
    for (int y = 0; y < ch; ++y)
      for (int x = 0; x < cw * 3; ++x)
        ASSERT_EQ(part.rgb[(y * cw) * 3 + x], full.rgb[((top + y) * wh[0] + left) * 3 + x]) << wh[0] << "x" << wh[1];
  }
}

TEST(ImagebindImage, EmptyImageIsInputError) {
  EXPECT_THROW(imagebind_image_input(media::Image{}), InputError);
}

}  // namespace
}  // namespace omnibind::preprocess
