#include "omnibind/preprocess/pil_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace omnibind::preprocess {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's 8bpc fixed point

// Hot loops get an AVX2 clone picked at load time (ifunc); the default clone runs anywhere.
#define OMNIBIND_SIMD_CLONES __attribute__((target_clones("avx2", "default")))

double bicubic(double x) {  // Keys kernel, a = -0.5 (PIL's bicubic_filter)
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Per output index: first input index, tap count, and ksize fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // [out][ksize]
};

Coeffs make_coeffs(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      // PIL rounds half away from zero via (int)(+-0.5 + w * 2^22).
      c.weights[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift, as PIL's lookup index
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Rows [y0, y1) of the input, output columns [x0, x0 + out_w) of a resize to `full_w` columns.
OMNIBIND_SIMD_CLONES
media::Image horizontal(const media::Image& in, int full_w, int x0, int out_w, int y0, int y1) {
  const Coeffs c = make_coeffs(in.width, full_w);
  media::Image out;
  out.width = out_w;
  out.height = y1 - y0;
  out.rgb.resize(static_cast<size_t>(out_w) * out.height * 3);
  // Each input row is widened once to RGBX int32 lanes (as PIL stores RGB images), so one tap is
  // one 4-lane multiply-add; the integer arithmetic is exactly PIL's.
  typedef int32_t v4si __attribute__((vector_size(16)));
  std::vector<v4si> px(static_cast<size_t>(in.width));
  for (int y = y0; y < y1; ++y) {
    const uint8_t* src = in.rgb.data() + static_cast<size_t>(y) * in.width * 3;
    for (int x = 0; x < in.width; ++x) px[x] = v4si{src[3 * x], src[3 * x + 1], src[3 * x + 2], 0};
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y - y0) * out_w * 3;
    for (int ox = 0; ox < out_w; ++ox) {
      const int xx = x0 + ox;
      const int32_t* k = c.weights.data() + static_cast<size_t>(xx) * c.ksize;
      const v4si* p = px.data() + c.first[xx];
      v4si acc = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 0};
      for (int x = 0; x < c.count[xx]; ++x) acc += p[x] * k[x];
      dst[3 * ox] = clip8(acc[0]);
      dst[3 * ox + 1] = clip8(acc[1]);
      dst[3 * ox + 2] = clip8(acc[2]);
    }
  }
  return out;
}

// Output rows [y0, y0 + out_h) of a resize to `full_h` rows of an image whose rows start at input
// row `row_offset` (rows before it were not computed because no kept output row reads them).
OMNIBIND_SIMD_CLONES
media::Image vertical(const media::Image& in, int in_full_h, int full_h, int y0, int out_h, int row_offset) {
  const Coeffs c = make_coeffs(in_full_h, full_h);
  media::Image out;
  out.width = in.width;
  out.height = out_h;
  const size_t row = static_cast<size_t>(in.width) * 3;
  out.rgb.resize(row * out_h);
  std::vector<int32_t> acc(row);
  for (int oy = 0; oy < out_h; ++oy) {
    const int yy = y0 + oy;
    const int32_t* k = c.weights.data() + static_cast<size_t>(yy) * c.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* s = in.rgb.data() + (c.first[yy] + y - row_offset) * row;
      const int32_t w = k[y];
      for (size_t i = 0; i < row; ++i) acc[i] += s[i] * w;
    }
    uint8_t* dst = out.rgb.data() + oy * row;
    for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

media::Image pil_resize_bicubic_crop(const media::Image& in, int out_width, int out_height, int left, int top,
                                     int crop_w, int crop_h) {
  // PIL skips a pass whose size does not change (identity); cropping commutes with both passes,
  // so only the kept columns, and only the input rows the kept output rows read, are computed.
  const bool need_h = out_width != in.width;
  const bool need_v = out_height != in.height;
  int y0 = top, y1 = top + crop_h;  // input rows needed
  if (need_v) {
    const Coeffs cv = make_coeffs(in.height, out_height);
    y0 = in.height;
    y1 = 0;
    for (int yy = top; yy < top + crop_h; ++yy) {
      y0 = std::min(y0, cv.first[yy]);
      y1 = std::max(y1, cv.first[yy] + cv.count[yy]);
    }
  }
  media::Image rows;
  if (need_h) {
    rows = horizontal(in, out_width, left, crop_w, y0, y1);
  } else {
    rows.width = crop_w;
    rows.height = y1 - y0;
    rows.rgb.resize(static_cast<size_t>(crop_w) * rows.height * 3);
    for (int y = y0; y < y1; ++y)
      std::copy_n(in.rgb.data() + (static_cast<size_t>(y) * in.width + left) * 3, static_cast<size_t>(crop_w) * 3,
                  rows.rgb.data() + static_cast<size_t>(y - y0) * crop_w * 3);
  }
  if (!need_v) return rows;
  return vertical(rows, in.height, out_height, top, crop_h, y0);
}

media::Image pil_resize_bicubic(const media::Image& in, int out_width, int out_height) {
  return pil_resize_bicubic_crop(in, out_width, out_height, 0, 0, out_width, out_height);
}

std::pair<int, int> shortest_side_resize_dims(int width, int height, int size) {
  const int short_side = width <= height ? width : height;
  const int long_side = width <= height ? height : width;
  const int new_long = static_cast<int>(static_cast<double>(size) * long_side / short_side);
  return width <= height ? std::pair{size, new_long} : std::pair{new_long, size};
}

std::pair<int, int> center_crop_offsets(int width, int height, int crop) {
  // Python round(): half to even; std::nearbyint in the default rounding mode does the same.
  const int left = static_cast<int>(std::nearbyint((width - crop) / 2.0));
  const int top = static_cast<int>(std::nearbyint((height - crop) / 2.0));
  return {left, top};
}

}  // namespace omnibind::preprocess
