// Localisation speed (issue 18 item 6): regions/s of embed_regions (the image pathway over sliding
// windows) and queries/s of locate() on the cached regions, plus text queries end to end (embedding
// the text + locate), for any bundle, JSON on stdout (and --out).
//
//   bench_locate --demo [--classes 10]                  a demo-shaped bundle, random weights (written to a temp dir)
//   bench_locate --bundle DIR                            any bundle, e.g. make_random_release --preset base
//   bench_locate --eval-demo BUNDLE --classes N --seed S [--scenes K] [--scene-seed Z]
//                                                        the demo's localisation table on a demo's bundle (world N, S)
//        [--image FILE | --image-size 224] [--scales 0.2,0.3,0.45,0.65,1] [--stride 0.25] [--batch 32]
//        [--reps 3] [--warmup] [--queries 200] [--text-queries 5] [--threads N] [--precision fp32|bf16] [--out FILE]
//
// Each repetition embeds every region of the image once (the experts are built first, untimed; --warmup
// also runs one untimed region); regions/s = regions / best repetition, per wall second and per CPU second. Random weights compute exactly
// what trained ones do, so the rates are those of the real models at those widths.
#include <ATen/ATen.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "omnibind/apps/demo/demo_locate.h"
#include "omnibind/common/error.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/media/image.h"
#include "omnibind/retrieval/bundle_query_embedder.h"
#include "omnibind/retrieval/localisation.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace fs = std::filesystem;
using namespace omnibind;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU seconds of the whole process (every thread): on a shared machine wall time also counts other jobs.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

media::Image random_image(int side, uint64_t seed) {
  media::Image im;
  im.width = im.height = side;
  im.rgb.resize(size_t(side) * side * 3);
  std::mt19937_64 rng(seed);
  // Smooth blobs over noise, so crops are not all alike.
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x)
      for (int k = 0; k < 3; ++k)
        im.rgb[(size_t(y) * side + x) * 3 + k] =
            uint8_t(128 + 60 * std::sin(0.05 * x * (k + 1)) * std::cos(0.07 * y) + int(rng() % 40) - 20);
  return im;
}

}  // namespace

int main(int argc, char** argv) {
  common::keep_freed_memory_in_process();
  std::string bundle_dir, image_path, scales, out, precision, eval_demo;
  int scenes = 12;
  uint64_t seed = 7, scene_seed = 0;
  bool demo = false, warmup = false;
  int classes = 10, image_size = 224, batch = 32, reps = 3, queries = 200, text_queries = 5, threads = 0;
  double stride = 0.25;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_locate: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bundle") bundle_dir = next();
    else if (a == "--demo") demo = true;
    else if (a == "--warmup") warmup = true;
    else if (a == "--classes") classes = std::stoi(next());
    else if (a == "--image") image_path = next();
    else if (a == "--image-size") image_size = std::stoi(next());
    else if (a == "--scales") scales = next();
    else if (a == "--stride") stride = std::stod(next());
    else if (a == "--batch") batch = std::stoi(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--queries") queries = std::stoi(next());
    else if (a == "--text-queries") text_queries = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--precision") precision = next();
    else if (a == "--out") out = next();
    else if (a == "--eval-demo") eval_demo = next();
    else if (a == "--scenes") scenes = std::stoi(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--scene-seed") scene_seed = std::stoull(next());
    else {
      std::fprintf(stderr, "bench_locate: unknown option %s (see the comment at the top of bench/bench_locate.cpp)\n", a.c_str());
      return 2;
    }
  }
  try {
    if (threads > 0) tensor_io::set_compute_threads(threads);
    if (!eval_demo.empty()) {  // the demo's localisation evaluation on a demo bundle (world of --classes, --seed)
      const auto bundle = pipeline::ModelBundle::load(eval_demo);
      apps::LocateEvalOptions eo;
      eo.scenes = scenes;
      eo.seed = scene_seed ? scene_seed : seed;  // the demo draws its scenes with its own seed
      if (!scales.empty()) eo.grid.scales = retrieval::parse_fraction_list(scales, "--scales");
      eo.grid.stride = stride;
      eo.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
      const auto e = apps::evaluate_localisation(bundle, apps::make_world_spec(classes, seed), eo);
      std::printf("%s\n", e.to_json().dump(2).c_str());
      return 0;
    }
    require(demo != !bundle_dir.empty(), "give exactly one of --demo and --bundle DIR");
    fs::path tmp;
    if (demo) {
      tmp = fs::temp_directory_path() / ("bench_locate_" + std::to_string(::getpid()));
      apps::write_random_demo_bundle(tmp, classes, 1);
      bundle_dir = (tmp / "bundle").string();
    }
    pipeline::BundleLoadOptions lo;
    lo.precision = precision;
    lo.threads = threads;
    auto bundle = std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(bundle_dir, lo));
    const media::Image image = image_path.empty() ? random_image(image_size, 5) : media::decode_image_file(image_path);
    retrieval::RegionGrid grid;
    if (!scales.empty()) grid.scales = retrieval::parse_fraction_list(scales, "--scales");
    grid.stride = stride;
    grid.batch = batch;
    const auto windows = retrieval::region_windows(image.width, image.height, grid);

    // Warm-up: builds the image experts (lazy) without a forward pass; with --warmup also one region.
    {
      const auto t = Clock::now();
      bundle->experts_for(experts::Modality::Image);
      if (warmup) {
        retrieval::RegionGrid one = grid;
        one.scales = {1.0};
        retrieval::embed_regions(*bundle, image, one);
      }
      std::fprintf(stderr, "bench_locate: warm-up (experts built%s) %.2f s\n", warmup ? ", 1 region" : "", since(t));
    }
    double best = 1e300, best_cpu = 1e300;
    retrieval::RegionEmbeddings regions;
    for (int r = 0; r < reps; ++r) {
      const auto t = Clock::now();
      const double c0 = cpu_seconds();
      regions = retrieval::embed_regions(*bundle, image, grid);
      const double s = since(t);
      best = std::min(best, s);
      best_cpu = std::min(best_cpu, cpu_seconds() - c0);
      std::fprintf(stderr, "bench_locate: %zu regions in %.3f s (%.1f regions/s)\n", windows.size(), s, windows.size() / s);
    }

    // locate() on the cache with random unit queries.
    std::mt19937_64 rng(9);
    std::normal_distribution<float> normal;
    std::vector<std::vector<float>> qs(size_t(std::max(1, queries)), std::vector<float>(size_t(bundle->dim())));
    for (auto& q : qs)
      for (auto& v : q) v = normal(rng);
    auto t = Clock::now();
    double c0 = cpu_seconds();
    for (const auto& q : qs) retrieval::locate(regions, q);
    const double locate_s = since(t), locate_cpu = cpu_seconds() - c0;

    // Text queries end to end (embed the text, locate on the cache).
    double text_s = 0, text_cpu = 0;
    int texts = 0;
    if (bundle->covers(experts::Modality::Text) && text_queries > 0) {
      retrieval::BundleQueryEmbedder embedder(bundle);
      retrieval::locate(regions, retrieval::compose_media_query(embedder, {retrieval::QueryItem::text("warm up")}));
      t = Clock::now();
      c0 = cpu_seconds();
      for (int i = 0; i < text_queries; ++i)
        retrieval::locate(regions, retrieval::compose_media_query(embedder, {retrieval::QueryItem::text("a red thing number " + std::to_string(i))}));
      text_s = since(t);
      text_cpu = cpu_seconds() - c0;
      texts = text_queries;
    }

    nlohmann::json j{{"bench", "locate"},
                     {"bundle", bundle_dir},
                     {"model", bundle->name()},
                     {"precision", bundle->precision()},
                     {"threads", threads},
                     {"image", {{"width", image.width}, {"height", image.height}}},
                     {"grid", {{"scales", grid.scales}, {"stride", grid.stride}, {"batch", grid.batch}}},
                     {"regions", windows.size()},
                     {"embed_regions_seconds_best", best},
                     {"regions_per_second", windows.size() / best},
                     {"embed_regions_cpu_seconds_best", best_cpu},
                     {"regions_per_cpu_second", windows.size() / best_cpu},
                     {"locate_queries", qs.size()},
                     {"locate_queries_per_second", qs.size() / locate_s},
                     {"locate_queries_per_cpu_second", qs.size() / locate_cpu},
                     {"text_queries", texts},
                     {"text_queries_per_second", texts ? texts / text_s : 0.0},
                     {"text_queries_per_cpu_second", texts ? texts / text_cpu : 0.0},
                     {"loaded_experts", bundle->loaded_experts()}};
    const std::string text = j.dump(2);
    std::printf("%s\n", text.c_str());
    if (!out.empty()) std::ofstream(out) << text << "\n";
    if (!tmp.empty()) fs::remove_all(tmp);
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench_locate: %s\n", e.what());
    return 2;
  }
  return 0;
}
