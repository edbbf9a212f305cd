// The report's inline SVG charts: escaped text, every finite point drawn inside the box, bars
// proportional to their values, deterministic bytes, one-line errors on inconsistent input.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>

#include "omnibind/apps/report/svg_charts.h"
#include "omnibind/common/error.h"

namespace omnibind::apps {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SvgCharts, EscapesMarkup) {
  EXPECT_EQ(escape_html("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  const std::string svg = svg_scatter({{0, 0, 0}}, {"<script>"}, "x & y");
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("x &amp; y"), std::string::npos);
}

TEST(SvgCharts, ScatterDrawsFinitePointsInsideTheBoxColouredByClass) {
  std::vector<ScatterPoint> points{{-5, 2, 0}, {5, -2, 1}, {0, 0, 1}, {NAN, 1, 0}, {1, INFINITY, 0}, {3, 1, -1}};
  const std::string svg = svg_scatter(points, {"lantern", "kettle"}, "audio", 200, 100);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 6), "</svg>");
  EXPECT_EQ(count(svg, "<circle"), 4);
  EXPECT_EQ(count(svg, "fill=\"" + class_colour(1) + "\"/>"), 2 + 1);  // two points + the legend swatch
  EXPECT_EQ(count(svg, "fill=\"" + class_colour(-1) + "\""), 1);
  const std::regex circle("cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\"");
  int seen = 0;
  for (std::sregex_iterator it(svg.begin(), svg.end(), circle), end; it != end; ++it, ++seen) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    EXPECT_GE(x, 8.0 - 1e-9);
    EXPECT_LE(x, 192.0 + 1e-9);
    EXPECT_GE(y, 0.0);
    EXPECT_LE(y, 100.0);
  }
  EXPECT_EQ(seen, 4);
  EXPECT_NE(svg.find("cx=\"8.0\""), std::string::npos);    // leftmost point on the left margin
  EXPECT_NE(svg.find("cx=\"192.0\""), std::string::npos);  // rightmost on the right margin
  EXPECT_EQ(svg, svg_scatter(points, {"lantern", "kettle"}, "audio", 200, 100));
  // One point or identical points: no division by zero, drawn in the centre.
  const std::string one = svg_scatter({{1, 1, 0}, {1, 1, 0}}, {}, "t", 100, 100);
  EXPECT_EQ(count(one, "cx=\"50.0\" cy=\"50.0\""), 2);
  EXPECT_THROW(svg_scatter(points, {}, "t", 8, 100), InputError);
}

TEST(SvgCharts, BarsAreProportionalToValues) {
  const std::string svg = svg_bars({"CLAP", "IB", "EVA"}, {0.5, 0.25, 0.0}, "audio inputs", 330);
  // bar area = 330 - 90 - 40 = 200 px for the largest value.
  EXPECT_NE(svg.find("width=\"200.0\""), std::string::npos);
  EXPECT_NE(svg.find("width=\"100.0\""), std::string::npos);
  EXPECT_NE(svg.find("width=\"0.0\""), std::string::npos);
  EXPECT_NE(svg.find(">0.25<"), std::string::npos);
  EXPECT_EQ(count(svg, "<rect"), 3);
  EXPECT_THROW(svg_bars({"a"}, {1, 2}, "t"), InputError);
  EXPECT_THROW(svg_bars({"a"}, {1}, "t", 100), InputError);
  const std::string zeros = svg_bars({"a", "b"}, {0, NAN}, "t");
  EXPECT_EQ(count(zeros, "width=\"0.0\""), 2);
}

}  // namespace
}  // namespace omnibind::apps
