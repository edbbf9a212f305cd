// PIL's Image.resize(..., BICUBIC) on 8-bit RGB, reproduced to the bit: separable convolution,
// horizontal pass first, support widened by the scale when shrinking (antialiasing), coefficients
// normalised in double then quantised to 22 fractional bits, uint8 rounding/clamping after each pass.
#pragma once
#include "omnibind/media/image.h"

namespace omnibind::preprocess {

media::Image pil_resize_bicubic(const media::Image& in, int out_width, int out_height);

// The [left, left + crop_w) x [top, top + crop_h) window of pil_resize_bicubic(in, out_width,
// out_height), computing only what that window needs (same bits).
media::Image pil_resize_bicubic_crop(const media::Image& in, int out_width, int out_height, int left, int top,
                                     int crop_w, int crop_h);

// torchvision Resize(size) on a PIL image: (width, height) with the short side = size and the long
// side = int(size * long / short) (truncation).
std::pair<int, int> shortest_side_resize_dims(int width, int height, int size);

// torchvision CenterCrop offsets: (left, top) = round-half-even((dim - crop) / 2).
std::pair<int, int> center_crop_offsets(int width, int height, int crop);

}  // namespace omnibind::preprocess
