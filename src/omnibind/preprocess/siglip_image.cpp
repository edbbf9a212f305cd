#include "omnibind/preprocess/siglip_image.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_image.h"

namespace omnibind::preprocess {

namespace {

// The HWC array (3, W, 3) read as CHW and turned back into a PIL image (to_pil_image): W high, 3
// wide, pixel (x = k, y = j) = (row 0, row 1, row 2) of column j, channel k.
media::Image as_reference_reads_three_rows(const media::Image& in) {
  media::Image out;
  out.width = 3;
  out.height = in.width;
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int j = 0; j < in.width; ++j)
    for (int k = 0; k < 3; ++k)
      for (int c = 0; c < 3; ++c)
        out.rgb[(static_cast<size_t>(j) * 3 + k) * 3 + c] = in.rgb[(static_cast<size_t>(c) * in.width + j) * 3 + k];
  return out;
}

}  // namespace

at::Tensor siglip_image_input(const media::Image& image, int size) {
  require(image.width > 0 && image.height > 0 &&
              image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
          "image input: expected a non-empty HxWx3 RGB buffer");
  require(size > 0, "SigLIP image size must be positive");
  require(image.height != 1, "image is 1 pixel high: SigLIP's reference preprocessing cannot read it (transformers "
                             "takes a 1-row array for a 1-channel image and fails)");
  // SiglipImageProcessor: resize to (size, size) BICUBIC via PIL; rescale = uint8 * (1/255) in
  // float64, astype(float32); normalize (x - 0.5) / 0.5 in float32.
  return clip_image_input(image.height == 3 ? as_reference_reads_three_rows(image) : image, size, ImageResize::Squash,
                          PixelScale::HfRescale, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
}

}  // namespace omnibind::preprocess
