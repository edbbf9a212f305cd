// SigLIP's image input as OmniBind runs it: transformers 4.37.2 SiglipImageProcessor (released
// preprocessor_config.json) on the PIL RGB image: resize to exactly size x size with PIL BICUBIC
// (aspect ratio not kept, no crop), x * (1/255) in float64 then cast to float32, (x - 0.5) / 0.5 in
// float32, HWC -> CHW. docs/reference/siglip.md has the sources and the quirk below.
#pragma once
#include <ATen/core/Tensor.h>

#include "omnibind/media/image.h"

namespace omnibind::preprocess {

// RGB image -> [3, size, size] float32.
// The reference guesses the channel axis from the array shape (infer_channel_dimension_format: a
// first dimension of 1 or 3 means channels-first), so an image 1 or 3 pixels high is misread:
// 1 pixel high -> the reference raises (a 1-channel result meets a 3-entry mean): InputError here;
// 3 pixels high -> its rows are taken as the colour planes of a W-high, 3-wide image: reproduced.
at::Tensor siglip_image_input(const media::Image& image, int size = 384);

}  // namespace omnibind::preprocess
