#include "omnibind/retrieval/localisation.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>

#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"

namespace omnibind::retrieval {
namespace {

using Clock = std::chrono::steady_clock;

// Area-average downscale to tw x th (every source pixel whose centre falls in a target pixel's footprint).
media::Image downscale(const media::Image& src, int tw, int th) {
  media::Image out;
  out.width = tw;
  out.height = th;
  out.rgb.resize(size_t(tw) * th * 3);
  const double sx = double(src.width) / tw, sy = double(src.height) / th;
  for (int y = 0; y < th; ++y) {
    const int y0 = int(std::floor(y * sy)), y1 = std::max(y0 + 1, std::min(src.height, int(std::ceil((y + 1) * sy))));
    for (int x = 0; x < tw; ++x) {
      const int x0 = int(std::floor(x * sx)), x1 = std::max(x0 + 1, std::min(src.width, int(std::ceil((x + 1) * sx))));
      double acc[3] = {0, 0, 0};
      for (int yy = y0; yy < y1; ++yy)
        for (int xx = x0; xx < x1; ++xx)
          for (int k = 0; k < 3; ++k) acc[k] += src.rgb[(size_t(yy) * src.width + xx) * 3 + k];
      const double n = double(y1 - y0) * (x1 - x0);
      for (int k = 0; k < 3; ++k) out.rgb[(size_t(y) * tw + x) * 3 + k] = uint8_t(std::lround(acc[k] / n));
    }
  }
  return out;
}

media::Image crop(const media::Image& src, const Box& b) {
  media::Image out;
  out.width = b.w;
  out.height = b.h;
  out.rgb.resize(size_t(b.w) * b.h * 3);
  for (int y = 0; y < b.h; ++y)
    std::copy_n(&src.rgb[(size_t(b.y + y) * src.width + b.x) * 3], size_t(b.w) * 3, &out.rgb[size_t(y) * b.w * 3]);
  return out;
}

// 1-D window starts: 0, step, 2 step, ... and the last one flush with the far border.
std::vector<int> starts(int extent, int side, int step) {
  std::vector<int> s;
  if (side >= extent) return {0};
  for (int p = 0; p + side < extent; p += step) s.push_back(p);
  if (s.empty() || s.back() != extent - side) s.push_back(extent - side);
  return s;
}

std::vector<float> unit_query(const std::vector<float>& q, int64_t dim, const std::string& what) {
  require(int64_t(q.size()) == dim, "the query has " + std::to_string(q.size()) + " dims, " + what + " has " + std::to_string(dim));
  double n = 0;
  for (float x : q) n += double(x) * x;
  require(std::isfinite(n) && n > 1e-24, "the query is a zero or non-finite vector");
  std::vector<float> out(q.size());
  for (size_t i = 0; i < q.size(); ++i) out[i] = float(q[i] / std::sqrt(n));
  return out;
}

LocateResult locate_rows(const RegionEmbeddings& regions, const at::Tensor& rows, std::vector<float> q,
                         const LocateOptions& o) {
  require(o.top_k >= 1, "top_k must be at least 1");
  require(o.nms_iou > 0 && o.nms_iou <= 1, "nms_iou must be in (0, 1]");
  require(o.vote_iou > 0 && o.vote_iou <= 1, "vote_iou must be in (0, 1]");
  require(std::isfinite(o.temperature) && o.temperature > 0, "temperature must be positive");
  const int64_t R = int64_t(regions.regions.size());
  require(R > 0 && rows.defined() && rows.size(0) == R, "the region cache is empty or inconsistent");
  LocateResult r;
  r.image_width = regions.width;
  r.image_height = regions.height;
  {
    at::NoGradGuard no_grad;
    const at::Tensor qt = at::from_blob(q.data(), {int64_t(q.size())}, at::kFloat);
    const at::Tensor s = at::mv(rows.to(at::kFloat).contiguous(), qt).contiguous();
    r.region_scores.assign(s.data_ptr<float>(), s.data_ptr<float>() + R);
  }
  const auto& scores = r.region_scores;

  // Weights of the density heat and of box voting: exp((cos - cos_best) / T), T relative to the spread.
  const float best_score = *std::max_element(scores.begin(), scores.end());
  double mean = 0, var = 0;
  for (float v : scores) mean += v;
  mean /= double(R);
  for (float v : scores) var += (v - mean) * (v - mean);
  const double T = std::max(o.temperature * std::sqrt(var / double(R)), 1e-6);
  std::vector<double> weight(static_cast<size_t>(R));
  for (int64_t i = 0; i < R; ++i) weight[size_t(i)] = std::exp((scores[size_t(i)] - best_score) / T);

  const int W = regions.width, H = regions.height;
  const double cell = double(std::max(W, H)) / std::max(1, regions.grid.heat_cells);
  r.heat_width = std::max(1, int(std::lround(W / cell)));
  r.heat_height = std::max(1, int(std::lround(H / cell)));
  const double cw = double(W) / r.heat_width, ch = double(H) / r.heat_height;
  const size_t cells = size_t(r.heat_width) * r.heat_height;
  // Cells whose centre lies in a box: [ix0, ix1) x [iy0, iy1).
  auto cell_range = [&](const Box& b) {
    return std::array<int, 4>{std::max(0, int(std::ceil(b.x / cw - 0.5))), std::min(r.heat_width, int(std::ceil((b.x + b.w) / cw - 0.5))),
                              std::max(0, int(std::ceil(b.y / ch - 0.5))), std::min(r.heat_height, int(std::ceil((b.y + b.h) / ch - 0.5)))};
  };
  r.heat.assign(cells, 0.f);
  if (o.heat == HeatMethod::Density) {
    std::vector<double> acc(cells, 0.0);
    for (int64_t i = 0; i < R; ++i) {
      if (weight[size_t(i)] < 1e-9) continue;
      const Box& b = regions.regions[size_t(i)].box;
      const double w = weight[size_t(i)] / double(b.area());
      const auto [ix0, ix1, iy0, iy1] = cell_range(b);
      for (int y = iy0; y < iy1; ++y)
        for (int x = ix0; x < ix1; ++x) acc[size_t(y) * r.heat_width + x] += w;
    }
    const double top = *std::max_element(acc.begin(), acc.end());
    for (size_t c = 0; c < cells; ++c) r.heat[c] = top > 0 ? float(acc[c] / top) : 0.f;
  } else {
    // Per scale, mean cosine of the windows containing each cell centre; then the mean over scales.
    const int scales = int(regions.grid.scales.size());
    std::vector<double> sum(cells * scales, 0.0), count(cells * scales, 0.0);
    for (int64_t i = 0; i < R; ++i) {
      const auto& reg = regions.regions[size_t(i)];
      const auto [ix0, ix1, iy0, iy1] = cell_range(reg.box);
      const size_t base = size_t(reg.scale) * cells;
      for (int y = iy0; y < iy1; ++y)
        for (int x = ix0; x < ix1; ++x) {
          sum[base + size_t(y) * r.heat_width + x] += scores[size_t(i)];
          count[base + size_t(y) * r.heat_width + x] += 1;
        }
    }
    for (size_t c = 0; c < cells; ++c) {
      double acc = 0;
      int used = 0;
      for (int s = 0; s < scales; ++s)
        if (count[size_t(s) * cells + c] > 0) {
          acc += sum[size_t(s) * cells + c] / count[size_t(s) * cells + c];
          ++used;
        }
      r.heat[c] = used ? float(acc / used) : 0.f;
    }
  }
  size_t best = 0;
  for (size_t c = 1; c < cells; ++c)
    if (r.heat[c] > r.heat[best]) best = c;
  r.heat_min = *std::min_element(r.heat.begin(), r.heat.end());
  r.heat_max = r.heat[best];
  r.peak_x = (double(best % r.heat_width) + 0.5) * cw;
  r.peak_y = (double(best / r.heat_width) + 0.5) * ch;

  // Boxes: greedy NMS by cosine, then score-weighted voting among the windows overlapping each kept one.
  std::vector<int64_t> order(static_cast<size_t>(R));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
  std::vector<int64_t> kept;
  for (int64_t i : order) {
    if (int(kept.size()) >= o.top_k) break;
    const Box& b = regions.regions[size_t(i)].box;
    bool clear = true;
    for (int64_t k : kept) clear = clear && iou(b, regions.regions[size_t(k)].box) <= o.nms_iou;
    if (clear) kept.push_back(i);
  }
  for (int64_t k : kept) {
    ScoredBox sb;
    sb.region = int(k);
    sb.score = scores[size_t(k)];
    sb.box = regions.regions[size_t(k)].box;
    if (o.box_voting) {
      double wsum = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      for (int64_t i = 0; i < R; ++i) {
        const Box& b = regions.regions[size_t(i)].box;
        if (i != k && iou(b, sb.box) < o.vote_iou) continue;
        const double w = std::exp((scores[size_t(i)] - sb.score) / T);  // relative to the seed: no underflow
        wsum += w;
        x0 += w * b.x;
        y0 += w * b.y;
        x1 += w * (b.x + b.w);
        y1 += w * (b.y + b.h);
      }
      const int bx0 = std::clamp(int(std::lround(x0 / wsum)), 0, W - 1), by0 = std::clamp(int(std::lround(y0 / wsum)), 0, H - 1);
      const int bx1 = std::clamp(int(std::lround(x1 / wsum)), bx0 + 1, W), by1 = std::clamp(int(std::lround(y1 / wsum)), by0 + 1, H);
      sb.box = {bx0, by0, bx1 - bx0, by1 - by0};
    }
    r.boxes.push_back(sb);
  }
  return r;
}

struct Rgb {
  double r, g, b;
};

Rgb ramp(double t) {
  static const Rgb stops[] = {{0.05, 0.03, 0.25}, {0.45, 0.05, 0.55}, {0.85, 0.20, 0.25}, {0.98, 0.60, 0.05}, {1.0, 0.98, 0.55}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, int(t));
  const double f = t - i;
  return {stops[i].r + f * (stops[i + 1].r - stops[i].r), stops[i].g + f * (stops[i + 1].g - stops[i].g),
          stops[i].b + f * (stops[i + 1].b - stops[i].b)};
}

// Bilinear heat (normalised to [0, 1]) at image pixel (px, py).
double heat_at(const LocateResult& r, double px, double py) {
  const double span = r.heat_max - r.heat_min;
  const double fx = std::clamp((px + 0.5) * r.heat_width / r.image_width - 0.5, 0.0, double(r.heat_width - 1));
  const double fy = std::clamp((py + 0.5) * r.heat_height / r.image_height - 0.5, 0.0, double(r.heat_height - 1));
  const int x0 = int(fx), y0 = int(fy), x1 = std::min(x0 + 1, r.heat_width - 1), y1 = std::min(y0 + 1, r.heat_height - 1);
  const double ax = fx - x0, ay = fy - y0;
  auto h = [&](int x, int y) { return double(r.heat[size_t(y) * r.heat_width + x]); };
  const double v = (1 - ay) * ((1 - ax) * h(x0, y0) + ax * h(x1, y0)) + ay * ((1 - ax) * h(x0, y1) + ax * h(x1, y1));
  return span > 0 ? (v - r.heat_min) / span : 0.5;
}

void put(media::Image& im, int x, int y, const uint8_t c[3]) {
  if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
  std::copy_n(c, 3, &im.rgb[(size_t(y) * im.width + x) * 3]);
}

void rectangle(media::Image& im, const Box& b, int thick, const uint8_t c[3]) {
  for (int t = 0; t < thick; ++t) {
    for (int x = b.x; x < b.x + b.w; ++x) {
      put(im, x, b.y + t, c);
      put(im, x, b.y + b.h - 1 - t, c);
    }
    for (int y = b.y; y < b.y + b.h; ++y) {
      put(im, b.x + t, y, c);
      put(im, b.x + b.w - 1 - t, y, c);
    }
  }
}

}  // namespace

double iou(const Box& a, const Box& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.w, b.x + b.w), y1 = std::min(a.y + a.h, b.y + b.h);
  if (x1 <= x0 || y1 <= y0) return 0;
  const double inter = double(x1 - x0) * (y1 - y0);
  return inter / (double(a.area()) + double(b.area()) - inter);
}

std::vector<double> parse_fraction_list(const std::string& csv, const std::string& what) {
  std::vector<double> out;
  for (const auto& part : split_list(csv)) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    require(used == part.size() && std::isfinite(v) && v > 0, what + ": '" + part + "' is not a positive number");
    out.push_back(v);
  }
  require(!out.empty(), what + ": give at least one value");
  return out;
}

void validate_grid(const RegionGrid& g) {
  require(!g.scales.empty(), "region grid: no scales");
  for (double s : g.scales) require(std::isfinite(s) && s > 0 && s <= 1, "region grid: scale " + std::to_string(s) + " is not in (0, 1]");
  require(std::isfinite(g.stride) && g.stride > 0 && g.stride <= 1, "region grid: stride must be in (0, 1]");
  require(!g.aspects.empty(), "region grid: no aspect ratios");
  for (double a : g.aspects) require(std::isfinite(a) && a >= 0.1 && a <= 10, "region grid: aspect " + std::to_string(a) + " is not in [0.1, 10]");
  require(g.heat_cells >= 1 && g.heat_cells <= 1024, "region grid: heat cells must be in [1, 1024]");
  require(g.max_image_side == 0 || g.max_image_side >= 16, "region grid: max image side must be 0 or at least 16");
  require(g.max_regions >= 1, "region grid: max regions must be at least 1");
  require(g.batch >= 1, "region grid: batch must be at least 1");
}

std::vector<Region> region_windows(int width, int height, const RegionGrid& g) {
  validate_grid(g);
  require(width >= 1 && height >= 1, "the image is empty");
  std::vector<Region> out;
  std::set<std::tuple<int, int, int, int>> seen;
  const double shorter = std::min(width, height);
  for (size_t s = 0; s < g.scales.size(); ++s)
    for (double a : g.aspects) {
      const int w = std::clamp(int(std::lround(g.scales[s] * shorter * std::sqrt(a))), 1, width);
      const int h = std::clamp(int(std::lround(g.scales[s] * shorter / std::sqrt(a))), 1, height);
      const auto xs = starts(width, w, std::max(1, int(std::lround(g.stride * w))));
      const auto ys = starts(height, h, std::max(1, int(std::lround(g.stride * h))));
      require(int64_t(out.size()) + int64_t(xs.size()) * int64_t(ys.size()) <= g.max_regions,
              "the region grid gives more than " + std::to_string(g.max_regions) +
                  " windows for a " + std::to_string(width) + "x" + std::to_string(height) +
                  " image (use fewer or larger scales, or a larger stride)");
      for (int y : ys)
        for (int x : xs)
          if (seen.insert({x, y, w, h}).second) out.push_back({{x, y, w, h}, int(s)});
    }
  return out;
}

RegionEmbeddings embed_regions(const pipeline::ModelBundle& bundle, const media::Image& image, const RegionGrid& grid,
                               const EmbedRegionsOptions& options) {
  const auto start = Clock::now();
  require(image.width >= 1 && image.height >= 1 && image.rgb.size() == size_t(image.width) * image.height * 3,
          "the image is empty or inconsistent");
  require(bundle.covers(Modality::Image),
          "the model '" + bundle.name() + "' has no image pathway: localisation embeds regions of the image");
  for (const auto& run : bundle.experts_for(Modality::Image))
    require(run.family != "precomputed",
            "the model '" + bundle.name() + "' reads images from a precomputed pool; localisation needs experts that read pixels");

  RegionEmbeddings out;
  out.width = image.width;
  out.height = image.height;
  out.grid = grid;
  out.model = bundle.name();
  out.regions = region_windows(image.width, image.height, grid);

  // Crops come from a downscaled copy when the image is larger than max_image_side.
  const int longer = std::max(image.width, image.height);
  const bool shrink = grid.max_image_side > 0 && longer > grid.max_image_side;
  const double f = shrink ? double(grid.max_image_side) / longer : 1.0;
  media::Image small;
  if (shrink)
    small = downscale(image, std::max(1, int(std::lround(image.width * f))), std::max(1, int(std::lround(image.height * f))));
  const media::Image& source = shrink ? small : image;

  const int64_t R = int64_t(out.regions.size());
  std::vector<at::Tensor> unified;
  std::map<std::string, std::vector<at::Tensor>> spaces;
  const std::string modality(experts::modality_name(Modality::Image));
  at::NoGradGuard no_grad;
  for (int64_t b0 = 0; b0 < R; b0 += grid.batch) {
    const int64_t b1 = std::min(R, b0 + grid.batch);
    std::vector<experts::MediaInput> inputs;
    for (int64_t i = b0; i < b1; ++i) {
      Box b = out.regions[size_t(i)].box;
      if (shrink) {
        const int x0 = std::clamp(int(std::floor(b.x * f)), 0, source.width - 1);
        const int y0 = std::clamp(int(std::floor(b.y * f)), 0, source.height - 1);
        const int x1 = std::clamp(int(std::ceil((b.x + b.w) * f)), x0 + 1, source.width);
        const int y1 = std::clamp(int(std::ceil((b.y + b.h) * f)), y0 + 1, source.height);
        b = {x0, y0, x1 - x0, y1 - y0};
      }
      inputs.push_back(experts::MediaInput::from_bytes(media::encode_png(crop(source, b)), "region " + std::to_string(i) + ".png"));
    }
    auto x = bundle.expert_embeddings(Modality::Image, inputs);
    unified.push_back(bundle.model().embed(modality, x).to(at::kFloat).contiguous());
    if (options.keep_spaces)
      for (auto& [name, t] : x) spaces[name].push_back(t.to(at::kFloat).contiguous());
    if (options.progress) options.progress(b1, R);
  }
  out.unified = at::cat(unified, 0);
  for (auto& [name, parts] : spaces) out.spaces[name] = at::cat(parts, 0);
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

LocateResult locate(const RegionEmbeddings& regions, const std::vector<float>& query, const LocateOptions& options) {
  require(regions.unified.defined(), "the region cache has no unified embeddings");
  return locate_rows(regions, regions.unified, unit_query(query, regions.unified.size(1), "the model '" + regions.model + "'"), options);
}

LocateResult locate_in_space(const RegionEmbeddings& regions, const std::string& space, const std::vector<float>& query,
                             const LocateOptions& options) {
  auto it = regions.spaces.find(space);
  if (it == regions.spaces.end()) {
    std::string names;
    for (auto& [n, t] : regions.spaces) names += (names.empty() ? "" : ", ") + n;
    throw InputError("the region cache has no space '" + space + "' (it has: " + (names.empty() ? "none" : names) + ")");
  }
  return locate_rows(regions, it->second, unit_query(query, it->second.size(1), "space " + space), options);
}

std::vector<float> compose_media_query(const QueryEmbedder& embedder, const std::vector<QueryItem>& items) {
  QuerySources sources;
  sources.dim = embedder.dim();
  sources.dim_owner = "the model";
  sources.embedder = &embedder;
  sources.no_ids = "stored ids need an index; localisation takes text, media or vectors";
  sources.no_items = "no query: give text, media or a vector";
  return compose_items(items, sources);
}

media::Image heat_colours(const LocateResult& r) {
  media::Image im;
  im.width = r.image_width;
  im.height = r.image_height;
  im.rgb.resize(size_t(im.width) * im.height * 3);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const Rgb c = ramp(heat_at(r, x, y));
      uint8_t* p = &im.rgb[(size_t(y) * im.width + x) * 3];
      p[0] = uint8_t(std::lround(c.r * 255));
      p[1] = uint8_t(std::lround(c.g * 255));
      p[2] = uint8_t(std::lround(c.b * 255));
    }
  return im;
}

media::Image overlay(const media::Image& image, const LocateResult& r, double alpha, int max_boxes) {
  require(image.width == r.image_width && image.height == r.image_height,
          "overlay: the image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
              " but the result is for " + std::to_string(r.image_width) + "x" + std::to_string(r.image_height));
  alpha = std::clamp(alpha, 0.0, 1.0);
  media::Image im = image;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const Rgb c = ramp(heat_at(r, x, y));
      uint8_t* p = &im.rgb[(size_t(y) * im.width + x) * 3];
      const double cc[3] = {c.r, c.g, c.b};
      for (int k = 0; k < 3; ++k) p[k] = uint8_t(std::lround((1 - alpha) * p[k] + alpha * 255 * cc[k]));
    }
  const int thick = std::max(1, std::min(im.width, im.height) / 160);
  static const uint8_t best[3] = {40, 255, 80}, other[3] = {80, 220, 255}, dark[3] = {0, 0, 0}, light[3] = {255, 255, 255};
  const int n = std::min<int>(max_boxes, int(r.boxes.size()));
  for (int i = n - 1; i >= 0; --i) rectangle(im, r.boxes[size_t(i)].box, i == 0 ? 2 * thick : thick, i == 0 ? best : other);
  const int px = int(r.peak_x), py = int(r.peak_y), arm = std::max(3, std::min(im.width, im.height) / 40);
  for (int d = -arm; d <= arm; ++d)
    for (int t = -thick; t <= thick; ++t) {
      put(im, px + d, py + t, std::abs(t) == thick ? dark : light);
      put(im, px + t, py + d, std::abs(t) == thick ? dark : light);
    }
  return im;
}

nlohmann::json locate_json(const LocateResult& r) {
  nlohmann::json values = nlohmann::json::array();
  for (int y = 0; y < r.heat_height; ++y) {
    nlohmann::json row = nlohmann::json::array();
    for (int x = 0; x < r.heat_width; ++x) row.push_back(r.heat[size_t(y) * r.heat_width + x]);
    values.push_back(std::move(row));
  }
  nlohmann::json boxes = nlohmann::json::array();
  for (const auto& b : r.boxes)
    boxes.push_back({{"x", b.box.x}, {"y", b.box.y}, {"w", b.box.w}, {"h", b.box.h}, {"score", b.score}});
  return {{"image", {{"width", r.image_width}, {"height", r.image_height}}},
          {"heat", {{"width", r.heat_width}, {"height", r.heat_height}, {"min", r.heat_min}, {"max", r.heat_max}, {"values", values}}},
          {"peak", {{"x", r.peak_x}, {"y", r.peak_y}}},
          {"boxes", boxes},
          {"regions", r.region_scores.size()}};
}

}  // namespace omnibind::retrieval
