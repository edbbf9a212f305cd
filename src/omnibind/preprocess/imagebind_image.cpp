#include "omnibind/preprocess/imagebind_image.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/pil_resize.h"

namespace omnibind::preprocess {

at::Tensor imagebind_image_input(const media::Image& image) {
  constexpr int kSize = 224;
  require(image.width > 0 && image.height > 0 &&
              image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
          "image input: expected a non-empty HxWx3 RGB buffer");
  const auto [rw, rh] = shortest_side_resize_dims(image.width, image.height, kSize);
  const auto [left, top] = center_crop_offsets(rw, rh, kSize);
  const media::Image crop = pil_resize_bicubic_crop(image, rw, rh, left, top, kSize, kSize);

  // ToTensor (u8 / 255 in float32) then Normalize ((x - mean) / std in float32): one table per channel.
  static const float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = (x - kMean[c]) / kStd[c];
    }
  at::Tensor out = at::empty({3, kSize, kSize}, at::kFloat);
  float* o = out.data_ptr<float>();
  for (int y = 0; y < kSize; ++y) {
    const uint8_t* src = crop.rgb.data() + static_cast<size_t>(y) * kSize * 3;
    for (int x = 0; x < kSize; ++x)
      for (int c = 0; c < 3; ++c) o[(static_cast<size_t>(c) * kSize + y) * kSize + x] = lut[c][src[3 * x + c]];
  }
  return out;
}

}  // namespace omnibind::preprocess
