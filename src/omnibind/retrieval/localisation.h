// Any-query localisation: where in an image is the thing a query (text, sound, point cloud, another
// image, or a weighted composition of them) refers to? Regions of the image are embedded through the
// image pathway of a model bundle (experts, heads, router) and scored against the query in the unified
// space (docs/reference/localisation.md):
//   auto regions = embed_regions(bundle, image);                 // one pass over the image's regions
//   auto q = compose_media_query(embedder, {QueryItem::text("a red lantern")});
//   LocateResult r = locate(regions, q);                          // heatmap + boxes, ~free per query
// The region cache (RegionEmbeddings) is a plain value: compute it once per image and call locate()
// for as many queries as wanted; locate() on a cache gives exactly what a fresh embed_regions would.
// Method: multi-scale sliding square-ish windows (RegionGrid); every window's crop is handed to the
// bundle as an image of its own (the experts' own resize/crop applies), embedded in batches. Heat of a
// cell = score-weighted window density: sum over the windows containing it of exp((cos - cos_max) / T) /
// window area, T = temperature x the std of the image's window cosines, scaled to 1 at the peak. Boxes =
// greedy NMS over the windows by cosine, each kept box refined by the same weights over the windows
// overlapping it. HeatMethod::MeanCosine is the plain baseline (mean cosine of the covering windows).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/media/image.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/retrieval/query.h"
#include "omnibind/retrieval/query_embedder.h"

namespace omnibind::retrieval {

// A box in image pixels of the original image: [x, x + w) x [y, y + h).
struct Box {
  int x = 0, y = 0, w = 0, h = 0;
  int64_t area() const { return int64_t(w) * h; }
  bool contains(double px, double py) const { return px >= x && px < x + w && py >= y && py < y + h; }
};
double iou(const Box& a, const Box& b);

// Which windows to embed. Window sides are fractions of the image's shorter side (times sqrt(aspect)
// in width, / sqrt(aspect) in height), clipped to the image; windows step by `stride` x the side and
// the last one in a row/column is aligned to the far border so every pixel is covered.
struct RegionGrid {
  std::vector<double> scales = {0.2, 0.3, 0.45, 0.65, 1.0};
  double stride = 0.25;               // step as a fraction of the window side, (0, 1]
  std::vector<double> aspects = {1.0};  // width / height of the windows
  int heat_cells = 64;                // heatmap cells along the longer side (the other side in proportion)
  int max_image_side = 1024;          // larger images are area-downscaled first (boxes stay in original pixels); 0 = never
  int max_regions = 20000;            // more windows than this is an InputError (tune scales/stride)
  int batch = 32;                     // crops per forward pass
};
// "0.2,0.3,0.5" style lists for the CLI and server; InputError naming `what` on a bad value.
std::vector<double> parse_fraction_list(const std::string& csv, const std::string& what);
void validate_grid(const RegionGrid& grid);  // InputError naming the field

// The windows of a width x height image (before any downscale: pixel boxes of that image).
struct Region {
  Box box;
  int scale = 0;  // index into RegionGrid::scales
};
std::vector<Region> region_windows(int width, int height, const RegionGrid& grid);

// The image's region embeddings: computed once, reused by every locate() call.
struct RegionEmbeddings {
  int width = 0, height = 0;          // the original image
  RegionGrid grid;
  std::vector<Region> regions;        // in original-image pixels
  at::Tensor unified;                 // [R, D] unit rows, the bundle's unified space
  // The single expert spaces the image pathway ran (binding name such as "IT", "EVA_E14p" -> [R, d] unit
  // rows): locate_in_space() scores one of them alone. Empty when EmbedRegionsOptions::keep_spaces is off.
  std::map<std::string, at::Tensor> spaces;
  std::string model;                  // the bundle's name()
  double seconds = 0;                 // wall time of embed_regions
};

struct EmbedRegionsOptions {
  bool keep_spaces = true;
  // Called after each batch with (regions embedded, total regions).
  std::function<void(int64_t done, int64_t total)> progress;
};

// InputError when the bundle has no image pathway, when its image experts cannot read pixels (a
// precomputed pool), or on a bad grid.
RegionEmbeddings embed_regions(const pipeline::ModelBundle& bundle, const media::Image& image,
                               const RegionGrid& grid = {}, const EmbedRegionsOptions& options = {});

enum class HeatMethod {
  Density,     // score-weighted window density (default; docs/reference/localisation.md)
  MeanCosine,  // per scale the mean cosine of the windows containing the cell, then the mean over scales (baseline)
};

struct LocateOptions {
  int top_k = 5;           // boxes returned (at most)
  double nms_iou = 0.3;    // a window overlapping a kept box by more than this is suppressed
  bool box_voting = true;  // refine each kept box by the score-weighted mean of the windows overlapping it (IoU >= vote_iou)
  double vote_iou = 0.3;
  // Softness of the weights exp((cos - cos_best) / T) of the heat density and of box voting, in units of
  // the standard deviation of this image's window cosines (T = temperature x std): scale-free across bundles.
  double temperature = 0.3;
  HeatMethod heat = HeatMethod::Density;
};

struct ScoredBox {
  Box box;
  float score = 0;   // cosine of the window that seeded the box
  int region = -1;   // that window's index in RegionEmbeddings::regions
};

struct LocateResult {
  int image_width = 0, image_height = 0;
  int heat_width = 0, heat_height = 0;   // cells
  // [heat_height][heat_width] row-major. Density: relative, 1 at the peak, >= 0; MeanCosine: cosine units.
  std::vector<float> heat;
  float heat_min = 0, heat_max = 0;
  double peak_x = 0, peak_y = 0;         // image pixel (centre of the hottest cell)
  std::vector<ScoredBox> boxes;          // best first
  std::vector<float> region_scores;      // cosine per region (same order as RegionEmbeddings::regions)
};

// Scores the cached regions against a unit query vector of the unified space (InputError on a wrong
// dimension or a zero vector; the query is renormalised).
LocateResult locate(const RegionEmbeddings& regions, const std::vector<float>& query, const LocateOptions& options = {});
// The same with one single expert space of the cache (`space` = a key of RegionEmbeddings::spaces) and a
// query vector of that space (e.g. from pipeline::ModelBundle::expert_embeddings). For ablations.
LocateResult locate_in_space(const RegionEmbeddings& regions, const std::string& space, const std::vector<float>& query,
                             const LocateOptions& options = {});

// The query: normalize(sum_i w_i * normalize(embed(item_i))) (retrieval::combine); media and text items
// go through `embedder`, vector items are taken as they are (stored ids are an InputError: no index).
std::vector<float> compose_media_query(const QueryEmbedder& embedder, const std::vector<QueryItem>& items);

// Rendering. heat_colours: the heatmap as an RGB image of the original size (bilinear over the cells,
// min..max mapped onto a dark-blue -> red -> yellow ramp). overlay: the image blended with the heat
// colours (alpha in [0, 1]), the boxes drawn (the best thicker) and the peak marked.
media::Image heat_colours(const LocateResult& result);
media::Image overlay(const media::Image& image, const LocateResult& result, double alpha = 0.45, int max_boxes = 3);

// JSON: {"image":{"width","height"}, "heat":{"width","height","min","max","values":[rows of floats]},
//        "peak":{"x","y"}, "boxes":[{"x","y","w","h","score"}...], "regions": R}
nlohmann::json locate_json(const LocateResult& result);

}  // namespace omnibind::retrieval
