#include "omnibind/experts/eva18b_stream/streamed_vision.h"

#include <ATen/ATen.h>

#include <chrono>

#include "omnibind/common/error.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts::eva18b_stream {
namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
const char* kFamily = "EVA-CLIP-18B";
}  // namespace

StreamedVision::StreamedVision(const tensor_io::StateDict& dict, const eva_clip::EvaVisionConfig& config,
                               int64_t embed_dim, at::ScalarType compute, tensor_io::BlockStreamOptions stream,
                               eva_clip::EvaKeyLayout layout)
    : compute_(compute) {
  tower_ = eva_clip::EvaVisionTower::load(WeightSource(dict, compute, kFamily), config, embed_dim, layout,
                                          /*with_blocks=*/false);
  if (stream.what == tensor_io::BlockStreamOptions{}.what) stream.what = "EVA-CLIP-18B vision";
  std::vector<std::string> prefixes;
  for (int64_t i = 0; i < config.layers; ++i) prefixes.push_back(eva_clip::EvaVisionTower::block_prefix(i, layout) + ".");
  stream_ = std::make_unique<tensor_io::BlockStream>(tensor_io::blocks_by_prefixes(dict, prefixes), stream);
}

at::Tensor StreamedVision::forward(const at::Tensor& pixels, StreamedVisionStats* stats, int64_t max_blocks,
                                   double max_seconds) {
  const auto& c = tower_.config;
  require(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == c.image_size && pixels.size(3) == c.image_size,
          "EVA-CLIP-18B: pixels must be [B, 3, " + std::to_string(c.image_size) + ", " + std::to_string(c.image_size) +
              "]");
  StreamedVisionStats s;
  const auto t_all = Clock::now();
  auto t0 = Clock::now();
  at::Tensor x = tower_.embed_patches(pixels);
  s.embed_seconds = since(t0);
  const int64_t n = max_blocks < 0 ? c.layers : std::min(max_blocks, c.layers);
  for (int64_t i = 0; i < n; ++i) {
    const auto tb = Clock::now();
    const size_t k = static_cast<size_t>(i);
    t0 = Clock::now();
    const tensor_io::StateDict& w = stream_->wait(k);
    s.wait_seconds += since(t0);
    {
      t0 = Clock::now();
      WeightSource ws(w, compute_, kFamily);
      eva_clip::EvaVisionBlock block = tower_.load_block(ws, i);
      ws.require_all_used();  // the block's own tensors only: nothing of another model in it
      s.build_seconds += since(t0);
      // A compute dtype other than every stored one (bf16 from an fp16 file): each tensor of the
      // block is a converted copy, so its mapped pages can go before the compute.
      bool copied = compute_ != at::kFloat;
      for (const auto& name : w.names())
        if (tensor_io::to_scalar_type(w.at(name).dtype) == compute_) copied = false;
      if (copied) {
        t0 = Clock::now();
        stream_->release(k);
        s.release_seconds += since(t0);
      }
      t0 = Clock::now();
      x = eva_clip::EvaVisionTower::run_block(block, x);
      s.compute_seconds += since(t0);
      if (!copied) {  // the block's tensors view the mapping: they go (end of scope) before its pages
        t0 = Clock::now();
        block = eva_clip::EvaVisionBlock();
        stream_->release(k);
        s.release_seconds += since(t0);
      }
    }
    s.block_seconds.push_back(since(tb));
    s.blocks_run += 1;
    if (max_seconds > 0 && since(t_all) > max_seconds) break;
  }
  // Stopped early (benchmarks): the blocks read ahead and not run leave memory too.
  for (size_t k = static_cast<size_t>(s.blocks_run); k < stream_->size() && s.blocks_run < c.layers; ++k)
    stream_->release(k);
  t0 = Clock::now();
  at::Tensor out = tower_.finish(x);
  s.finish_seconds = since(t0);
  s.total_seconds = since(t_all);
  if (stats) *stats = std::move(s);
  return out;
}

}  // namespace omnibind::experts::eva18b_stream
