// Embedding many inputs through a model bundle with decoding/preprocessing overlapped with compute:
// a worker thread reads each input's file once (its bytes are shared by every expert of the
// modality) and runs every expert's preprocess for batch i+1, i+2 (a bounded queue, depth 2 by
// default) while the calling thread encodes batch i and applies the heads. Batches reach the sink in
// input order; the rows equal ModelBundle::embed's.
//   pipeline::StreamOptions o;  o.batch = 8;
//   auto r = pipeline::embed_all(bundle, Modality::Image, inputs, names, o);   // r.unified [N, D]
// What `embed --model` runs (and `serve`/bindings can reuse). A failing input is one InputError
// naming it (names[i], or the input's own description when names[i] is empty).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "omnibind/pipeline/model_bundle.h"

namespace omnibind::pipeline {

struct StreamOptions {
  size_t batch = 8;          // inputs per encode call
  size_t queue_depth = 2;    // prepared batches waiting; 0 = no worker (read, preprocess, encode in turn)
  bool keep_experts = false; // fill StreamBatch::experts with every expert's rows
};

// Where the time went (seconds, summed over batches). Preprocess/read time is spent on the worker
// thread when queue_depth > 0, so it overlaps encode/heads; wall_s is the whole call.
struct StreamTimings {
  size_t items = 0, batches = 0;
  double read_s = 0;                        // file bytes (one read per input)
  std::map<std::string, double> preprocess_s;  // per expert run ("EVA_E14p+UNI3D_L"): decode + transforms
  std::map<std::string, double> encode_s;      // per expert run: forward pass
  double heads_s = 0;                       // heads + routers
  double wait_s = 0;                        // the encoding thread waiting for a prepared batch
  double wall_s = 0;
};

struct StreamBatch {
  size_t begin = 0;                          // index of the batch's first input
  at::Tensor unified;                        // [b, D] float32 unit rows
  std::map<std::string, at::Tensor> experts; // binding name -> [b, d] float32 (keep_experts only)
};
using StreamSink = std::function<void(StreamBatch&&)>;

// Embeds `inputs` (one modality) in batches, calling `sink` for each batch in input order (on the
// calling thread). `names` (same length, or empty) names inputs in errors. Experts are built as
// needed (ModelBundle's lazy loading). Throws the first failure (InputError naming the input); the
// worker is stopped and joined before any exception leaves.
StreamTimings embed_stream(const ModelBundle& bundle, Modality m, const std::vector<MediaInput>& inputs,
                           const std::vector<std::string>& names, const StreamOptions& options, const StreamSink& sink);

struct StreamResult {
  at::Tensor unified;                         // [N, D]
  std::map<std::string, at::Tensor> experts;  // keep_experts: binding name -> [N, d]
  StreamTimings timings;
};
StreamResult embed_all(const ModelBundle& bundle, Modality m, const std::vector<MediaInput>& inputs,
                       const std::vector<std::string>& names, const StreamOptions& options = {});

// The modality a media file evidently holds, from its first bytes (magic numbers) or else its
// extension: image (JPEG, PNG, GIF, BMP, WebP, TIFF), audio (WAV, FLAC, Ogg, MP3, AIFF), point (PLY,
// PCD, NPY, OFF, OBJ, STL, XYZ), text (.txt). nullopt when nothing says (the expert decides).
std::optional<Modality> media_modality(const std::string& head, const std::string& path);
// Reads up to 64 bytes of `path` and calls media_modality; nullopt when unreadable.
std::optional<Modality> file_modality(const std::string& path);

}  // namespace omnibind::pipeline
