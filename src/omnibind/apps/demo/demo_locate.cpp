#include "omnibind/apps/demo/demo_locate.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>

#include "omnibind/apps/demo/demo_binding.h"
#include "omnibind/apps/demo/demo_lineup.h"
#include "omnibind/apps/demo/demo_pools.h"
#include "omnibind/apps/demo/demo_scale.h"
#include "omnibind/apps/demo/demo_search.h"
#include "omnibind/apps/report/svg_charts.h"
#include "omnibind/apps/report/thumbnails.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_model.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/pipeline/random_heads.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::apps {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using experts::MediaInput;
using experts::Modality;
using retrieval::Box;

constexpr const char* kModalities[] = {"text", "audio", "point", "image"};

Box to_box(const SceneBox& b) { return {b.x, b.y, b.w, b.h}; }

std::vector<float> row_of(const at::Tensor& t, int64_t i) {
  const at::Tensor r = t[i].to(at::kFloat).contiguous();
  return std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + r.numel());
}

// A query of `modality` for an object of class `spec`, drawn fresh from `rng` (never the scene's own card).
MediaInput make_query(const ClassSpec& spec, const std::string& modality, WorldRng& rng, std::string* title) {
  if (modality == "text") {
    std::string caption = describe(spec, CaptionSource::Look, rng);
    *title = "text '" + caption + "'";
    return MediaInput::from_text(std::move(caption));
  }
  if (modality == "audio") {
    *title = "a sound of it";
    return MediaInput::from_bytes(media::encode_wav_pcm16(synthesise_sound(spec, rng)), "query.wav");
  }
  if (modality == "point") {
    *title = "a 3D shape of it";
    return MediaInput::from_bytes(media::encode_ply(sample_form(spec, rng)), "query.ply");
  }
  *title = "another picture of it";
  return MediaInput::from_bytes(media::encode_png(render_look(spec, rng)), "query.png");
}

struct Tally {
  int64_t n = 0, pointed = 0, hit = 0;
  double iou_sum = 0;
  LocateScore score() const {
    LocateScore s;
    s.queries = n;
    if (n) {
      s.pointing = double(pointed) / n;
      s.iou50 = double(hit) / n;
      s.mean_iou = iou_sum / n;
    }
    return s;
  }
};

void outline(media::Image& im, const Box& b, const uint8_t c[3]) {
  auto put = [&](int x, int y) {
    if (x >= 0 && y >= 0 && x < im.width && y < im.height) std::copy_n(c, 3, &im.rgb[(size_t(y) * im.width + x) * 3]);
  };
  for (int x = b.x - 1; x <= b.x + b.w; ++x) {
    put(x, b.y - 1);
    put(x, b.y + b.h);
  }
  for (int y = b.y - 1; y <= b.y + b.h; ++y) {
    put(b.x - 1, y);
    put(b.x + b.w, y);
  }
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", 100 * v);
  return buf;
}

}  // namespace

const LocateRow* LocateEvaluation::find(const std::string& name) const {
  for (const auto& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

nlohmann::json LocateEvaluation::to_json() const {
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [mod, s] : r.by_modality)
      m[mod] = {{"queries", s.queries}, {"pointing", s.pointing}, {"iou50", s.iou50}, {"mean_iou", s.mean_iou}};
    rows_json.push_back({{"name", r.name}, {"kind", r.kind}, {"by_modality", m}});
  }
  return {{"scenes", scenes},
          {"objects_per_scene", objects_per_scene},
          {"regions", regions},
          {"embed_seconds", embed_seconds},
          {"regions_per_second", embed_seconds > 0 ? regions / embed_seconds : 0.0},
          {"locate_calls", locate_calls},
          {"locate_seconds", locate_seconds},
          {"grid", {{"scales", grid.scales}, {"stride", grid.stride}, {"aspects", grid.aspects}}},
          {"rows", rows_json}};
}

LocateEvaluation evaluate_localisation(const pipeline::ModelBundle& bundle, const WorldSpec& world, const LocateEvalOptions& o) {
  require(o.scenes >= 1, "localisation evaluation needs at least one scene");
  LocateEvaluation out;
  out.scenes = o.scenes;
  out.objects_per_scene = o.scene.objects;
  out.grid = o.grid;
  const std::string kUnified = "OmniBind (unified space)", kBaseline = "OmniBind, plain sliding windows", kChance = "chance";
  retrieval::LocateOptions baseline = o.locate;  // the plain method: mean-cosine heat, the best window as it is
  baseline.heat = retrieval::HeatMethod::MeanCosine;
  baseline.box_voting = false;
  std::map<std::string, std::map<std::string, Tally>> tallies;  // row -> modality -> tally
  std::map<std::string, double> chance_point, chance_iou;       // modality -> sums
  std::map<std::string, int64_t> chance_n;
  std::vector<std::string> space_names;

  WorldRng root(world.seed ^ (o.seed * 0x9E3779B97F4A7C15ull));
  for (int s = 0; s < o.scenes; ++s) {
    WorldRng rng = root.fork(uint64_t(s) + 1);
    const Scene scene = make_scene(world, rng, o.scene);
    const auto t0 = Clock::now();
    const retrieval::RegionEmbeddings regions = retrieval::embed_regions(bundle, scene.image, o.grid);
    out.embed_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    out.regions += int64_t(regions.regions.size());
    if (space_names.empty())
      for (const auto& [name, t] : regions.spaces) space_names.push_back(name);

    for (size_t mi = 0; mi < std::size(kModalities); ++mi) {
      const std::string modality = kModalities[mi];
      const Modality m = experts::parse_modality(modality);
      if (!bundle.covers(m)) continue;
      std::vector<MediaInput> inputs;
      std::vector<std::string> titles;
      for (size_t i = 0; i < scene.objects.size(); ++i) {
        WorldRng qrng = rng.fork(1000 + 10 * i + mi);  // one stream per (scene, object, modality)
        std::string title;
        inputs.push_back(make_query(world.classes[size_t(scene.objects[i].label)], modality, qrng, &title));
        titles.push_back(title);
      }
      const auto experts_x = bundle.expert_embeddings(m, inputs);
      const at::Tensor unified = bundle.model().embed(modality, experts_x);
      for (size_t i = 0; i < scene.objects.size(); ++i) {
        const Box truth = to_box(scene.objects[i].box);
        auto score = [&](const std::string& row, const retrieval::LocateResult& r) {
          Tally& t = tallies[row][modality];
          ++t.n;
          const bool pointed = truth.contains(r.peak_x, r.peak_y);
          const double overlap = r.boxes.empty() ? 0.0 : retrieval::iou(r.boxes.front().box, truth);
          t.pointed += pointed;
          t.hit += overlap >= 0.5;
          t.iou_sum += overlap;
          return std::pair{pointed, overlap >= 0.5};
        };
        const auto l0 = Clock::now();
        const auto r = retrieval::locate(regions, row_of(unified, int64_t(i)), o.locate);
        out.locate_seconds += std::chrono::duration<double>(Clock::now() - l0).count();
        ++out.locate_calls;
        const auto [pointed, hit] = score(kUnified, r);
        score(kBaseline, retrieval::locate(regions, row_of(unified, int64_t(i)), baseline));
        for (const auto& space : space_names) {
          auto q = experts_x.find(space);
          if (q == experts_x.end()) continue;  // the space does not embed this query modality
          score(space + " alone", retrieval::locate_in_space(regions, space, row_of(q->second, int64_t(i)), o.locate));
        }
        // Chance: a uniformly random point; a uniformly random window as the best box.
        chance_point[modality] += double(truth.area()) / (double(scene.image.width) * scene.image.height);
        int64_t good = 0;
        for (const auto& reg : regions.regions) good += retrieval::iou(reg.box, truth) >= 0.5;
        chance_iou[modality] += double(good) / double(regions.regions.size());
        ++chance_n[modality];
        if (s < o.example_scenes && i == 0) {
          LocateExample ex;
          ex.modality = modality;
          ex.title = "scene " + std::to_string(s + 1) + ": " + titles[i] + " → " + world.classes[size_t(scene.objects[i].label)].name;
          ex.overlay = retrieval::overlay(scene.image, r, 0.45, 1);
          static const uint8_t kTruth[3] = {255, 255, 255};
          outline(ex.overlay, truth, kTruth);
          ex.pointed = pointed;
          ex.hit = hit;
          out.examples.push_back(std::move(ex));
        }
      }
    }
    if (o.log)
      o.log("localisation: scene " + std::to_string(s + 1) + "/" + std::to_string(o.scenes) + ", " +
            std::to_string(regions.regions.size()) + " regions");
  }

  auto add_row = [&](const std::string& name, const std::string& kind) {
    LocateRow row{name, kind, {}};
    for (const auto& [modality, t] : tallies[name]) row.by_modality[modality] = t.score();
    out.rows.push_back(std::move(row));
  };
  add_row(kUnified, "unified");
  add_row(kBaseline, "baseline");
  for (const auto& space : space_names)
    if (tallies.count(space + " alone")) add_row(space + " alone", "space");
  LocateRow chance{kChance, "chance", {}};
  for (const auto& [modality, n] : chance_n) {
    LocateScore sc;
    sc.queries = n;
    sc.pointing = chance_point[modality] / n;
    sc.iou50 = chance_iou[modality] / n;
    chance.by_modality[modality] = sc;
  }
  out.rows.push_back(std::move(chance));
  return out;
}

std::string render_locate_section(const LocateEvaluation& e) {
  std::ostringstream h;
  h << "<h2>Any-query localisation</h2><p>" << e.scenes << " scenes, each with " << e.objects_per_scene
    << " of the world's objects at known positions among blank cards and loose blobs. For every object one query per "
       "modality (a caption about its look, a sound, a 3D shape, another picture of it) is located in the scene through "
       "the bundle's image pathway: "
    << e.regions << " sliding windows in all ("
    << (e.embed_seconds > 0 ? std::to_string(int64_t(e.regions / e.embed_seconds)) : std::string("-"))
    << " regions/s), cached per scene and scored per query. <i>Pointing</i> = the heatmap's maximum lies in the true "
       "box; <i>IoU&ge;0.5</i> = the best box overlaps the true box by at least half (%). The heat is the score-weighted "
       "density of the windows and boxes are refined by voting (docs/reference/localisation.md); <i>plain sliding "
       "windows</i> = the same embeddings with the baseline method (mean cosine of the covering windows, the best window "
       "as it is). A single space alone uses its own query and region embeddings; blank = it does not embed that query "
       "modality. Chance = a random point / a random window.</p><table><tr><th>representation</th>";
  for (const std::string m : kModalities) h << "<th>" << m << " pointing</th><th>" << m << " IoU&ge;0.5</th>";
  h << "</tr>";
  for (const auto& row : e.rows) {
    h << "<tr class='" << (row.kind == "unified" ? "learned" : row.kind == "chance" ? "uniform" : "") << "'><td>"
      << escape_html(row.name) << "</td>";
    for (const std::string m : kModalities) {
      auto it = row.by_modality.find(m);
      if (it == row.by_modality.end()) {
        h << "<td></td><td></td>";
        continue;
      }
      h << "<td>" << pct(it->second.pointing) << "</td><td>" << pct(it->second.iou50) << "</td>";
    }
    h << "</tr>";
  }
  h << "</table><p class=note>Overlays: heat (dark = low, yellow = high), the best box (green), the heat maximum (cross), "
       "the true box (white).</p><div class=row>";
  for (const auto& ex : e.examples)
    h << "<div class='card " << (ex.pointed ? "right" : "wrong") << "'><div>" << (ex.pointed ? "&#10003; " : "&#10007; ")
      << escape_html(ex.title) << "</div><img src='" << image_data_uri(ex.overlay) << "' width=" << 2 * ex.overlay.width
      << " style='image-rendering:pixelated'></div>";
  h << "</div>";
  return h.str();
}

void write_random_demo_bundle(const fs::path& dir, int classes, uint64_t seed) {
  std::vector<DemoSpace> spaces;
  uint64_t k = 0;
  for (const auto& e : demo_lineup(classes)) {
    auto weights = experts::zoo::init_zoo_weights(e.config, seed + 17 * ++k);
    auto model = experts::zoo::ZooModel::bind(e.config, weights, e.key);
    spaces.push_back({e, std::move(weights), std::move(model)});
  }
  const auto config = demo_binding_config(spaces, demo_scale("small"));
  fs::create_directories(dir);
  const fs::path heads = dir / "heads.safetensors";
  tensor_io::write_tensors(heads.string(), pipeline::random_official_heads(config, {.seed = seed}));
  write_demo_bundle(dir, spaces, config, heads);
}

}  // namespace omnibind::apps
