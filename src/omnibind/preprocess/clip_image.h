// The image side of the CLIP-family experts (open_clip / DFN, EVA-CLIP, SigLIP): a PIL-exact bicubic
// resize of the decoded RGB image (squash to S x S, or shortest side + centre crop), the 8-bit ->
// float conversion the family uses, then (x - mean) / std in float32. Output [3, S, S] float32.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>

#include "omnibind/media/image.h"

namespace omnibind::preprocess {

enum class ImageResize {
  Squash,        // PIL img.resize((S, S), BICUBIC): aspect not kept, no crop (open_clip 'squash', SigLIP)
  ShortestCrop,  // torchvision Resize(S) (shortest side) + CenterCrop(S) (open_clip 'shortest', EVA, ImageBind)
  ShortestCropFloor,  // the same resize, centre crop at (d) // 2 (transformers CLIPImageProcessor; differs by
                      // one row/column from torchvision's round(d / 2) when d = 4k + 3)
};

enum class PixelScale {
  ToTensor,   // torchvision ToTensor: float32(v) / 255 in float32
  HfRescale,  // transformers rescale: float32(double(v) * (1 / 255)) (uint8 array * python float)
};

// mean / std are taken as float32 (torch Normalize and HF normalize both cast them to the image's
// float32 dtype). InputError on an empty image.
at::Tensor clip_image_input(const media::Image& image, int size, ImageResize resize, PixelScale scale,
                            const std::array<double, 3>& mean, const std::array<double, 3>& std);

}  // namespace omnibind::preprocess
