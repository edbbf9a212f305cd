// Inline SVG charts for the demo's self-contained HTML report (no external assets, no scripts):
// a class-coloured scatter plot (embedding maps) and a horizontal bar chart (router weights).
// Output is deterministic text (fixed number formatting, no locale); non-finite points are skipped,
// non-finite or negative bar values drawn as empty bars.
#pragma once
#include <string>
#include <vector>

namespace omnibind::apps {

// Text safe inside HTML/SVG element content and double-quoted attributes.
std::string escape_html(const std::string& text);

// A fixed categorical palette (hex "#rrggbb"); class i gets colour i mod palette size.
const std::string& class_colour(int index);

struct ScatterPoint {
  double x = 0, y = 0;
  int label = -1;          // colour index; -1 = grey
};

// Points scaled to fill a width x height box (one scale for both axes, 8 px margin); legend lists class_names
// (entries beyond the labels used are still listed). InputError when width/height < 16.
std::string svg_scatter(const std::vector<ScatterPoint>& points, const std::vector<std::string>& class_names,
                        const std::string& title, int width = 320, int height = 320);

// One bar per (label, value); values in [0, max(values)] mapped to the bar length, printed to 2
// decimals. InputError when labels and values differ in length.
std::string svg_bars(const std::vector<std::string>& labels, const std::vector<double>& values,
                     const std::string& title, int width = 320);

}  // namespace omnibind::apps
