#include "omnibind/apps/report/thumbnails.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/serving/base64.h"

namespace omnibind::apps {

std::string image_data_uri(const media::Image& image) {
  return "data:image/png;base64," + serving::base64_encode(media::encode_png(image));
}

std::string audio_data_uri(const media::Audio& audio) {
  return "data:audio/wav;base64," + serving::base64_encode(media::encode_wav_pcm16(audio));
}

std::string svg_point_cloud(const media::PointCloud& cloud, int size, double yaw, double pitch, int max_points) {
  const int64_t n = cloud.size();
  if (n == 0) throw InputError("svg_point_cloud: the point cloud is empty");
  if (size < 8) throw InputError("svg_point_cloud: the picture needs at least 8x8 pixels");
  const int64_t stride = std::max<int64_t>(1, (n + std::max(max_points, 1) - 1) / std::max(max_points, 1));
  struct P { double u, v, depth; };
  std::vector<P> pts;
  double cx = 0, cy = 0, cz = 0;
  for (int64_t i = 0; i < n; ++i) cx += cloud.xyz[3 * i], cy += cloud.xyz[3 * i + 1], cz += cloud.xyz[3 * i + 2];
  cx /= n, cy /= n, cz /= n;
  const double cyaw = std::cos(yaw), syaw = std::sin(yaw), cp = std::cos(pitch), sp = std::sin(pitch);
  double extent = 1e-12;
  for (int64_t i = 0; i < n; i += stride) {
    const double x = cloud.xyz[3 * i] - cx, y = cloud.xyz[3 * i + 1] - cy, z = cloud.xyz[3 * i + 2] - cz;
    const double x1 = cyaw * x - syaw * y, y1 = syaw * x + cyaw * y;  // yaw about z
    const double y2 = cp * y1 - sp * z, z2 = sp * y1 + cp * z;        // pitch about x
    pts.push_back({x1, z2, y2});                                      // screen: x right, z up; depth = y
    extent = std::max({extent, std::abs(x1), std::abs(z2)});
  }
  double dmin = pts[0].depth, dmax = pts[0].depth;
  for (const auto& p : pts) dmin = std::min(dmin, p.depth), dmax = std::max(dmax, p.depth);
  std::vector<size_t> order(pts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pts[a].depth > pts[b].depth; });
  const double half = size / 2.0, scale = (half - 3) / extent;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(size) + "\" height=\"" +
                  std::to_string(size) + "\"><rect width=\"" + std::to_string(size) + "\" height=\"" +
                  std::to_string(size) + "\" fill=\"#fff\"/>";
  char buf[96];
  for (size_t k : order) {
    const auto& p = pts[k];
    const double near = dmax > dmin ? (dmax - p.depth) / (dmax - dmin) : 1.0;  // 1 = nearest
    const int grey = static_cast<int>(std::lround(200 - 170 * near));
    std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.2\" fill=\"#%02x%02x%02x\"/>",
                  half + p.u * scale, half - p.v * scale, grey, grey, grey);
    s += buf;
  }
  return s + "</svg>";
}

}  // namespace omnibind::apps
