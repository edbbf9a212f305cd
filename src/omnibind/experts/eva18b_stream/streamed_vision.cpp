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

StreamedVision::StreamedVision(const tensor_io::StateDict& dict, const VisionConfig& config, at::ScalarType compute,
                               tensor_io::BlockStreamOptions stream, const std::string& prefix)
    : config_(config), compute_(compute), prefix_(prefix) {
  ends_ = VisionEnds::load(WeightSource(dict, compute, kFamily), prefix, config);
  if (stream.what == tensor_io::BlockStreamOptions{}.what) stream.what = "EVA-CLIP-18B vision";
  stream_ = std::make_unique<tensor_io::BlockStream>(tensor_io::blocks_by_prefix(dict, prefix + "blocks.", config.depth),
                                                     stream);
}

at::Tensor StreamedVision::forward(const at::Tensor& pixels, StreamedVisionStats* stats, int64_t max_blocks) {
  require(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == config_.image_size &&
              pixels.size(3) == config_.image_size,
          "EVA-CLIP-18B: pixels must be [B, 3, " + std::to_string(config_.image_size) + ", " +
              std::to_string(config_.image_size) + "]");
  StreamedVisionStats s;
  const auto t_all = Clock::now();
  auto t0 = Clock::now();
  at::Tensor x = ends_.embed(pixels);
  s.embed_seconds = since(t0);
  const int64_t n = max_blocks < 0 ? config_.depth : std::min(max_blocks, config_.depth);
  for (int64_t i = 0; i < n; ++i) {
    const auto tb = Clock::now();
    t0 = Clock::now();
    const tensor_io::StateDict& w = stream_->wait(static_cast<size_t>(i));
    s.wait_seconds += since(t0);
    {
      t0 = Clock::now();
      WeightSource ws(w, compute_, kFamily);
      const VisionBlock block = VisionBlock::load(ws, prefix_ + "blocks." + std::to_string(i), config_);
      ws.require_all_used();
      s.build_seconds += since(t0);
      // bf16 from a 16/32-bit file other than bf16: every tensor of the block is a converted copy,
      // so the mapped pages can go before the compute (one block less of pages in memory).
      bool copied = compute_ != at::kFloat;
      for (const auto& name : w.names())
        if (tensor_io::to_scalar_type(w.at(name).dtype) == compute_) copied = false;
      if (copied) {
        t0 = Clock::now();
        stream_->release(static_cast<size_t>(i));
        s.release_seconds += since(t0);
      }
      t0 = Clock::now();
      x = block.forward(x);
      s.compute_seconds += since(t0);
      if (!copied) {  // fp32: the block's tensors are views of the mapping; they go before its pages
        t0 = Clock::now();
        stream_->release(static_cast<size_t>(i));
        s.release_seconds += since(t0);
      }
    }
    s.block_seconds.push_back(since(tb));
    s.blocks_run += 1;
  }
  t0 = Clock::now();
  at::Tensor out = ends_.finish(x);
  s.finish_seconds = since(t0);
  s.total_seconds = since(t_all);
  if (stats) *stats = std::move(s);
  return out;
}

}  // namespace omnibind::experts::eva18b_stream
