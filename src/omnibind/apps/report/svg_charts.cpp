#include "omnibind/apps/report/svg_charts.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "omnibind/common/error.h"

namespace omnibind::apps {
namespace {

std::string num(double v) {  // locale-independent, fixed precision
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

const std::string& class_colour(int index) {
  static const std::array<std::string, 12> palette{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"};
  static const std::string grey = "#b0b0b0";
  if (index < 0) return grey;
  return palette[static_cast<size_t>(index) % palette.size()];
}

std::string svg_scatter(const std::vector<ScatterPoint>& points, const std::vector<std::string>& class_names,
                        const std::string& title, int width, int height) {
  if (width < 16 || height < 16) throw InputError("svg_scatter: the plot needs at least 16x16 pixels");
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& p : points)
    if (std::isfinite(p.x) && std::isfinite(p.y)) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  const double margin = 8, box_w = width - 2 * margin, box_h = height - 2 * margin;
  // One scale for both axes (no distortion), as large as the box allows.
  const double scale = std::min(box_w / std::max(x1 - x0, 1e-12), box_h / std::max(y1 - y0, 1e-12));
  const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const int legend_rows = static_cast<int>(class_names.size());
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                  std::to_string(height + 14 * legend_rows + 18) + "\" role=\"img\"><title>" + escape_html(title) +
                  "</title><text x=\"4\" y=\"12\" font-size=\"12\">" + escape_html(title) + "</text>" +
                  "<g transform=\"translate(0,18)\"><rect width=\"" + std::to_string(width) + "\" height=\"" +
                  std::to_string(height) + "\" fill=\"#fafafa\" stroke=\"#ddd\"/>";
  for (const auto& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    s += "<circle cx=\"" + num(width / 2.0 + (p.x - cx) * scale) + "\" cy=\"" +
         num(height / 2.0 - (p.y - cy) * scale) + "\" r=\"2.5\" fill=\"" + class_colour(p.label) + "\"/>";
  }
  for (int i = 0; i < legend_rows; ++i) {
    const std::string y = std::to_string(height + 14 * i + 10);
    s += "<rect x=\"4\" y=\"" + std::to_string(height + 14 * i + 2) + "\" width=\"9\" height=\"9\" fill=\"" +
         class_colour(i) + "\"/><text x=\"18\" y=\"" + y + "\" font-size=\"11\">" + escape_html(class_names[i]) +
         "</text>";
  }
  return s + "</g></svg>";
}

std::string svg_bars(const std::vector<std::string>& labels, const std::vector<double>& values,
                     const std::string& title, int width) {
  if (labels.size() != values.size())
    throw InputError("svg_bars: " + std::to_string(labels.size()) + " labels for " + std::to_string(values.size()) +
                     " values");
  if (width < 160) throw InputError("svg_bars: the chart needs at least 160 pixels of width");
  double top = 0;
  for (double v : values)
    if (std::isfinite(v)) top = std::max(top, v);
  const int row = 16, label_w = 90, value_w = 40;
  const double bar_w = width - label_w - value_w;
  const int height = 18 + row * static_cast<int>(values.size());
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                  std::to_string(height) + "\" role=\"img\"><title>" + escape_html(title) +
                  "</title><text x=\"4\" y=\"12\" font-size=\"12\">" + escape_html(title) + "</text>";
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = std::isfinite(values[i]) ? std::max(values[i], 0.0) : 0.0;
    const double len = top > 0 ? bar_w * v / top : 0.0;
    const std::string y = std::to_string(18 + row * static_cast<int>(i));
    char value[32];
    std::snprintf(value, sizeof value, "%.2f", std::isfinite(values[i]) ? values[i] : 0.0);
    s += "<text x=\"" + std::to_string(label_w - 4) + "\" y=\"" + std::to_string(18 + row * static_cast<int>(i) + 11) +
         "\" font-size=\"11\" text-anchor=\"end\">" + escape_html(labels[i]) + "</text><rect x=\"" +
         std::to_string(label_w) + "\" y=\"" + y + "\" width=\"" + num(len) + "\" height=\"" + std::to_string(row - 4) +
         "\" fill=\"" + class_colour(static_cast<int>(i)) + "\"/><text x=\"" + num(label_w + len + 3) + "\" y=\"" +
         std::to_string(18 + row * static_cast<int>(i) + 11) + "\" font-size=\"11\">" + value + "</text>";
  }
  return s + "</svg>";
}

}  // namespace omnibind::apps
