// What the /v1/locate tests share: the small demo (`omnibind demo --size small`, run once per test
// process: its bundle has a real image pathway and its index holds the held-out world items), a scene
// made of two world pictures of different classes pasted at known places on a larger canvas, and an
// in-process server over the demo's index and bundle.
#pragma once
#include <httplib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "omnibind/media/image.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/retrieval/query_embedder.h"
#include "omnibind/retrieval/vector_index.h"
#include "omnibind/serving/base64.h"
#include "omnibind/serving/server.h"
#include "testing/test_support.h"

namespace omnibind::testkit {

struct WorldPicture {
  int64_t id = -1;        // in the demo's index
  std::string path, cls;  // file, class name
};

struct DemoOutput {
  std::string dir, bundle, index, world;
  std::vector<WorldPicture> pictures;  // the index's images, in id order
  std::vector<WorldPicture> sounds;    // the index's audio items, in id order
  std::string error;                   // why the demo could not be made ("" = fine)
};

inline const DemoOutput& demo_output() {
  static const DemoOutput d = [] {
    DemoOutput o;
    // OMNIBIND_TEST_DEMO_DIR: a finished `omnibind demo --size small` output to reuse (saves its ~1 min).
    const char* reuse = std::getenv("OMNIBIND_TEST_DEMO_DIR");
    if (reuse && *reuse && std::filesystem::exists(std::string(reuse) + "/demo.json")) {
      o.dir = reuse;
    } else {
      o.dir = make_temp_dir("locate_demo") + "/out";
      auto r = run_cli({"demo", "--size", "small", "--out", o.dir, "--seed", "7", "--threads", "1", "--quiet"});
      if (r.exit_code != 0) {
        o.error = "omnibind demo failed: " + r.err;
        return o;
      }
    }
    o.bundle = o.dir + "/bundle";
    o.index = o.dir + "/index";
    o.world = o.dir + "/world";
    auto index = retrieval::VectorIndex::open(o.index, retrieval::VectorIndex::Mode::ReadOnly);
    index->for_each([&](const retrieval::ItemRecord& rec, const float*) {
      if (rec.modality == "image" && !rec.labels.empty()) o.pictures.push_back({rec.id, rec.source, rec.labels[0]});
      if (rec.modality == "audio" && !rec.labels.empty()) o.sounds.push_back({rec.id, rec.source, rec.labels[0]});
    }, false);
    auto by_id = [](auto& a, auto& b) { return a.id < b.id; };
    std::sort(o.pictures.begin(), o.pictures.end(), by_id);
    std::sort(o.sounds.begin(), o.sounds.end(), by_id);
    return o;
  }();
  return d;
}

// A scene: a 192x96 canvas with picture `a` (scaled 2x) in the left half and `b` in the right half.
struct Scene {
  media::Image image;
  std::string png;                    // encoded
  WorldPicture a, b;
  int ax = 16, ay = 16, bx = 112, by = 16, side = 64;  // where they are (pixels)
  bool in_a(double x, double y) const { return x >= ax && x < ax + side && y >= ay && y < ay + side; }
  bool in_b(double x, double y) const { return x >= bx && x < bx + side && y >= by && y < by + side; }
  std::string base64() const { return serving::base64_encode(png); }
};

inline Scene make_scene(const WorldPicture& a, const WorldPicture& b) {
  Scene s;
  s.a = a;
  s.b = b;
  s.image.width = 192;
  s.image.height = 96;
  // A light noisy background, like the world pictures' own (a flat grey one draws the heat to itself).
  s.image.rgb.resize(size_t(192) * 96 * 3);
  uint64_t state = 1;
  for (auto& v : s.image.rgb) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<uint8_t>(215 + (state >> 33) % 36);
  }
  auto paste = [&](const WorldPicture& p, int x0, int y0) {
    media::Image im = media::decode_image_file(p.path);
    for (int y = 0; y < s.side; ++y)
      for (int x = 0; x < s.side; ++x) {
        const int sx = x * im.width / s.side, sy = y * im.height / s.side;
        for (int c = 0; c < 3; ++c)
          s.image.rgb[(size_t(y0 + y) * s.image.width + x0 + x) * 3 + c] = im.rgb[(size_t(sy) * im.width + sx) * 3 + c];
      }
  };
  paste(a, s.ax, s.ay);
  paste(b, s.bx, s.by);
  s.png = media::encode_png(s.image);
  return s;
}

// The first picture of every class, in id order.
inline std::vector<WorldPicture> first_of_each_class(const DemoOutput& d) {
  std::vector<WorldPicture> out;
  for (const auto& p : d.pictures)
    if (std::none_of(out.begin(), out.end(), [&](const WorldPicture& q) { return q.cls == p.cls; })) out.push_back(p);
  return out;
}
// Another picture of p's class (not p), or one with id -1.
inline WorldPicture another_of_class(const DemoOutput& d, const WorldPicture& p) {
  for (const auto& q : d.pictures)
    if (q.cls == p.cls && q.id != p.id) return q;
  return {};
}

// Two pictures of different classes (the first of each), and another picture of a's class.
struct ScenePick {
  WorldPicture a, b, a_other;
  bool ok = false;
};
inline ScenePick pick_pictures(const DemoOutput& d) {
  ScenePick p;
  for (const auto& x : d.pictures) {
    if (p.a.id < 0) p.a = x;
    else if (p.b.id < 0 && x.cls != p.a.cls) p.b = x;
    else if (p.a_other.id < 0 && x.cls == p.a.cls) p.a_other = x;
  }
  p.ok = p.a.id >= 0 && p.b.id >= 0 && p.a_other.id >= 0;
  return p;
}

// An in-process server over `index_dir` with `embedder` (may be null).
struct LocateServer {
  std::unique_ptr<retrieval::VectorIndex> index;
  std::unique_ptr<retrieval::QueryEmbedder> embedder;
  std::unique_ptr<serving::Server> server;
  std::thread thread;
  int port = 0;

  LocateServer(const std::string& index_dir, std::unique_ptr<retrieval::QueryEmbedder> emb, serving::ServerOptions opt = {})
      : embedder(std::move(emb)) {
    index = retrieval::VectorIndex::open(index_dir, retrieval::VectorIndex::Mode::ReadOnly);
    opt.port = 0;
    server = std::make_unique<serving::Server>(*index, embedder.get(), opt);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 200 && !c.Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~LocateServer() {
    server->stop();
    thread.join();
  }
  std::pair<int, nlohmann::json> post(const std::string& path, const nlohmann::json& body) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300, 0);
    auto res = c.Post(path.c_str(), body.dump(), "application/json");
    if (!res) return {-1, nullptr};
    return {res->status, nlohmann::json::parse(res->body, nullptr, false)};
  }
};

}  // namespace omnibind::testkit
