// omnibind locate --model BUNDLE --image IMG (--text T | --audio F | --point F | --query-image F)...
//                 [--weights w1,w2] --out heat.png [--json boxes.json] [--overlay out.png]
// Where in IMG is what the query refers to: regions of the image embedded through the bundle's image
// pathway, scored against the (composed) query; a heatmap, the best boxes, an overlay
// (retrieval/localisation.h, docs/reference/localisation.md).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "omnibind/cli/verb.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/retrieval/bundle_query_embedder.h"
#include "omnibind/retrieval/localisation.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::cli {
namespace {

namespace fs = std::filesystem;
using namespace retrieval;

// An output path must be writable where it is going: its directory exists and it is not a directory.
void check_output(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  std::error_code ec;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  require(fs::is_directory(dir, ec), flag + " " + path + ": directory " + dir.string() + " not found");
  require(!fs::is_directory(p, ec), flag + " " + path + ": is a directory");
}

VerbRun setup(CLI::App& sub) {
  struct Opts {
    std::string model, image, out, json, overlay, scales, aspects, precision, heat = "density";
    std::vector<std::string> texts, audios, points, query_images;
    std::vector<float> weights;
    double stride = RegionGrid{}.stride;
    int top_k = LocateOptions{}.top_k, heat_cells = RegionGrid{}.heat_cells, max_side = RegionGrid{}.max_image_side;
    int batch = RegionGrid{}.batch, threads = 0;
    double nms = LocateOptions{}.nms_iou, temperature = LocateOptions{}.temperature;
    bool no_voting = false, progress = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("--model", o->model, "OmniBind model bundle (its image pathway embeds the regions)")->required();
  sub.add_option("--image", o->image, "The image to search in (PNG or JPEG)")->required();
  sub.add_option("--text", o->texts, "Query item: a text (repeatable)")->allow_extra_args(false);
  sub.add_option("--audio", o->audios, "Query item: an audio file (repeatable)")->allow_extra_args(false);
  sub.add_option("--point", o->points, "Query item: a point cloud file (repeatable)")->allow_extra_args(false);
  sub.add_option("--query-image", o->query_images, "Query item: an image file (repeatable)")->allow_extra_args(false);
  sub.add_option("--weights", o->weights,
                 "One weight per query item, in command-line order (negative subtracts; write --weights=-1,1 "
                 "when the first is negative); default 1 each")
      ->delimiter(',');
  sub.add_option("--out", o->out, "Heatmap PNG (the image's size, dark = low, yellow = high)")->required();
  sub.add_option("--json", o->json, "Heat grid, peak and boxes as JSON");
  sub.add_option("--overlay", o->overlay, "The image with the heatmap blended in, the boxes and the peak drawn (PNG)");
  sub.add_option("--scales", o->scales, "Window sides as fractions of the shorter image side (default 0.2,0.3,0.45,0.65,1)");
  sub.add_option("--stride", o->stride, "Window step as a fraction of its side (default 0.25)");
  sub.add_option("--aspects", o->aspects, "Window aspect ratios width/height (default 1)");
  sub.add_option("--top-k", o->top_k, "Boxes to return (default 5)");
  sub.add_option("--nms", o->nms, "Suppress windows overlapping a kept box by more than this IoU (default 0.3)");
  sub.add_option("--heat", o->heat, "density (score-weighted window density, default) or mean-cosine (the plain baseline)");
  sub.add_option("--temperature", o->temperature, "Softness of the window weights, x the std of the window cosines (default 0.3)");
  sub.add_flag("--no-box-voting", o->no_voting, "Report the best windows as they are (no score-weighted refinement)");
  sub.add_option("--heat-cells", o->heat_cells, "Heatmap cells along the longer side (default 64)");
  sub.add_option("--max-side", o->max_side, "Downscale larger images to this longer side before cropping (0 = never; default 1024)");
  sub.add_option("--batch", o->batch, "Regions per forward pass (default 32)");
  sub.add_option("--precision", o->precision, "fp32 | bf16 | auto (default: the bundle's)");
  sub.add_option("--threads", o->threads, "Compute threads (0 = libtorch default)");
  sub.add_flag("--progress", o->progress, "Progress on stderr even when it is not a terminal");
  sub.add_flag("-q,--quiet", o->quiet, "No summary on stdout");

  return [o, &sub]() -> int {
    // Query items in command-line order, so --weights lines up with what the user typed.
    std::vector<QueryItem> items;
    std::map<const CLI::Option*, size_t> used;
    const CLI::Option* text = sub.get_option("--text");
    const CLI::Option* audio = sub.get_option("--audio");
    const CLI::Option* point = sub.get_option("--point");
    const CLI::Option* qimage = sub.get_option("--query-image");
    for (const CLI::Option* opt : sub.parse_order()) {
      const size_t i = used[opt]++;
      if (opt == text && i < o->texts.size()) items.push_back(QueryItem::text(o->texts[i]));
      if (opt == audio && i < o->audios.size())
        items.push_back(QueryItem::media_item(Modality::Audio, MediaInput::from_path(o->audios[i])));
      if (opt == point && i < o->points.size())
        items.push_back(QueryItem::media_item(Modality::Point, MediaInput::from_path(o->points[i])));
      if (opt == qimage && i < o->query_images.size())
        items.push_back(QueryItem::media_item(Modality::Image, MediaInput::from_path(o->query_images[i])));
    }
    require(!items.empty(), "no query: give --text, --audio, --point or --query-image (repeatable, composed with --weights)");
    require(o->weights.empty() || o->weights.size() == items.size(),
            "--weights: " + std::to_string(o->weights.size()) + " weights for " + std::to_string(items.size()) + " query items");
    for (size_t i = 0; i < o->weights.size(); ++i) items[i].weight = o->weights[i];

    RegionGrid grid;
    if (!o->scales.empty()) grid.scales = parse_fraction_list(o->scales, "--scales");
    if (!o->aspects.empty()) grid.aspects = parse_fraction_list(o->aspects, "--aspects");
    grid.stride = o->stride;
    grid.heat_cells = o->heat_cells;
    grid.max_image_side = o->max_side;
    grid.batch = o->batch;
    validate_grid(grid);
    LocateOptions lo;
    lo.top_k = o->top_k;
    lo.nms_iou = o->nms;
    lo.box_voting = !o->no_voting;
    lo.temperature = o->temperature;
    require(o->heat == "density" || o->heat == "mean-cosine", "--heat " + o->heat + ": use density or mean-cosine");
    lo.heat = o->heat == "density" ? HeatMethod::Density : HeatMethod::MeanCosine;
    require(std::isfinite(lo.temperature) && lo.temperature > 0, "--temperature must be positive");
    require(lo.top_k >= 1 && lo.top_k <= 1000, "--top-k must be in 1..1000");
    require(lo.nms_iou > 0 && lo.nms_iou <= 1, "--nms must be in (0, 1]");
    check_output(o->out, "--out");
    check_output(o->json, "--json");
    check_output(o->overlay, "--overlay");
    if (o->threads > 0) tensor_io::set_compute_threads(o->threads);

    // Cheap checks first: the image decodes, the query embeds; then the long pass over the regions.
    const media::Image image = media::decode_image_file(o->image);
    pipeline::BundleLoadOptions load;
    load.precision = o->precision;
    load.threads = o->threads;
    auto bundle = std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(o->model, load));
    require(bundle->covers(Modality::Image), o->model + ": the model has no image pathway (localisation embeds image regions)");
    BundleQueryEmbedder embedder(bundle);
    const std::vector<float> query = compose_media_query(embedder, items);

    const auto windows = region_windows(image.width, image.height, grid);
    const bool show = o->progress || isatty(2);
    const auto start = std::chrono::steady_clock::now();
    EmbedRegionsOptions eo;
    eo.keep_spaces = false;
    eo.progress = [&](int64_t done, int64_t total) {
      if (!show) return;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\rlocate: regions %lld/%lld  %.1f regions/s", static_cast<long long>(done),
                   static_cast<long long>(total), s > 0 ? done / s : 0.0);
      if (done == total) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    };
    const RegionEmbeddings regions = embed_regions(*bundle, image, grid, eo);
    const LocateResult result = locate(regions, query, lo);

    media::write_png(o->out, heat_colours(result));
    if (!o->overlay.empty()) media::write_png(o->overlay, overlay(image, result));
    if (!o->json.empty()) {
      nlohmann::json j = locate_json(result);
      j["model"] = bundle->name();
      j["image_path"] = o->image;
      nlohmann::json q = nlohmann::json::array();
      for (const auto& it : items) q.push_back({{"item", it.describe()}, {"weight", it.weight}});
      j["query"] = q;
      j["grid"] = {{"scales", grid.scales}, {"stride", grid.stride}, {"aspects", grid.aspects}, {"max_side", grid.max_image_side}};
      j["method"] = {{"heat", o->heat}, {"temperature", lo.temperature}, {"box_voting", lo.box_voting}, {"nms", lo.nms_iou}};
      j["seconds"] = regions.seconds;
      write_bytes_atomically(o->json, j.dump(1));
    }
    if (!o->quiet) {
      std::printf("%zu regions in %.2f s (%.1f regions/s); heat %dx%d, peak at (%.0f, %.0f)\n", windows.size(),
                  regions.seconds, regions.seconds > 0 ? windows.size() / regions.seconds : 0.0, result.heat_width,
                  result.heat_height, result.peak_x, result.peak_y);
      int rank = 0;
      for (const auto& b : result.boxes)
        std::printf("%2d  x=%d y=%d w=%d h=%d  score %.4f\n", ++rank, b.box.x, b.box.y, b.box.w, b.box.h, b.score);
    }
    return 0;
  };
}

}  // namespace

REGISTER_VERB("locate", "Find where in an image a query (text, sound, 3D shape, image, or a composition) is: heatmap and boxes",
              setup);

}  // namespace omnibind::cli
