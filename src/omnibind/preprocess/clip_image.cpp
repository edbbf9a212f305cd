#include "omnibind/preprocess/clip_image.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/pil_resize.h"

namespace omnibind::preprocess {

at::Tensor clip_image_input(const media::Image& image, int size, ImageResize resize, PixelScale scale,
                            const std::array<double, 3>& mean, const std::array<double, 3>& std) {
  require(image.width > 0 && image.height > 0 &&
              image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
          "image input: expected a non-empty HxWx3 RGB buffer");
  require(size > 0, "image input: target size must be positive");
  media::Image sized;
  if (resize == ImageResize::Squash) {
    sized = pil_resize_bicubic(image, size, size);
  } else {
    const auto [rw, rh] = shortest_side_resize_dims(image.width, image.height, size);
    auto [left, top] = center_crop_offsets(rw, rh, size);
    if (resize == ImageResize::ShortestCropFloor) {
      left = (rw - size) / 2;  // transformers image_transforms.center_crop: (orig - crop) // 2 (both >= 0 here)
      top = (rh - size) / 2;
    }
    sized = pil_resize_bicubic_crop(image, rw, rh, left, top, size, size);
  }
  // One table per channel: every 8-bit value maps to exactly one float.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    const float m = static_cast<float>(mean[c]), s = static_cast<float>(std[c]);
    for (int v = 0; v < 256; ++v) {
      const float x = scale == PixelScale::ToTensor ? static_cast<float>(v) / 255.0f
                                                    : static_cast<float>(static_cast<double>(v) * (1.0 / 255.0));
      lut[c][v] = (x - m) / s;
    }
  }
  const int64_t S = size;
  at::Tensor out = at::empty({3, S, S}, at::kFloat);
  float* o = out.data_ptr<float>();
  for (int64_t y = 0; y < S; ++y) {
    const uint8_t* src = sized.rgb.data() + static_cast<size_t>(y * S * 3);
    for (int64_t x = 0; x < S; ++x)
      for (int c = 0; c < 3; ++c) o[(c * S + y) * S + x] = lut[c][src[3 * x + c]];
  }
  return out;
}

}  // namespace omnibind::preprocess
