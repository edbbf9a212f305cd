// ImageBind's vision input (imagebind/data.py load_and_transform_vision_data):
// Resize(224, BICUBIC) on the PIL image, CenterCrop(224), ToTensor, Normalize(CLIP mean/std).
#pragma once
#include <ATen/core/Tensor.h>

#include "omnibind/media/image.h"

namespace omnibind::preprocess {

// RGB image -> [3, 224, 224] float32.
at::Tensor imagebind_image_input(const media::Image& image);

}  // namespace omnibind::preprocess
