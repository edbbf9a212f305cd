#include "omnibind/preprocess/pil_resize.h"

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace omnibind::preprocess {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's 8bpc fixed point

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

media::Image horizontal(const media::Image& in, int out_w) {
  const Coeffs c = make_coeffs(in.width, out_w);
  media::Image out;
  out.width = out_w;
  out.height = in.height;
  out.rgb.resize(static_cast<size_t>(out_w) * in.height * 3);
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.rgb.data() + static_cast<size_t>(y) * in.width * 3;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = c.weights.data() + static_cast<size_t>(xx) * c.ksize;
      const uint8_t* s = src + static_cast<size_t>(c.first[xx]) * 3;
      int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
      for (int x = 0; x < c.count[xx]; ++x) {
        a0 += s[3 * x] * k[x];
        a1 += s[3 * x + 1] * k[x];
        a2 += s[3 * x + 2] * k[x];
      }
      dst[3 * xx] = clip8(a0);
      dst[3 * xx + 1] = clip8(a1);
      dst[3 * xx + 2] = clip8(a2);
    }
  }
  return out;
}

media::Image vertical(const media::Image& in, int out_h) {
  const Coeffs c = make_coeffs(in.height, out_h);
  media::Image out;
  out.width = in.width;
  out.height = out_h;
  const size_t row = static_cast<size_t>(in.width) * 3;
  out.rgb.resize(row * out_h);
  std::vector<int32_t> acc(row);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = c.weights.data() + static_cast<size_t>(yy) * c.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* s = in.rgb.data() + (c.first[yy] + y) * row;
      const int32_t w = k[y];
      for (size_t i = 0; i < row; ++i) acc[i] += s[i] * w;
    }
    uint8_t* dst = out.rgb.data() + yy * row;
    for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

media::Image pil_resize_bicubic(const media::Image& in, int out_width, int out_height) {
  // PIL skips a pass whose size does not change; an unchanged size is a plain copy.
  const bool need_h = out_width != in.width;
  const bool need_v = out_height != in.height;
  if (!need_h && !need_v) return in;
  if (need_h && need_v) return vertical(horizontal(in, out_width), out_height);
  return need_h ? horizontal(in, out_width) : vertical(in, out_height);
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
