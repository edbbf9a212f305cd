// EVA-CLIP-18B's vision tower run from a mapped checkpoint that does not fit in memory: the
// patch embedding, cls/pos tables, final norm and head (~25 MB) are resident; the 48 blocks
// (734 MB each in 16 bits) are streamed through tensor_io::BlockStream one at a time, with the next
// block(s) paged in on a worker while the current one computes, and released behind. All images of
// a call go through a block before the next block is read, so the file is read once per call (per
// batch), not once per image.
//
// Precision (experts/mixed_matmul.h, the project's one matmul rule), from a float16 file:
//   bf16: each block's matmul weights are converted fp16 -> bfloat16 when the block is built (the
//         only copy of the block that lives in the heap, 734 MB at the official widths); on CPUs
//         without native bf16 (this one) each GEMM upcasts its bf16 weight to float32 exactly and
//         multiplies in float32 (activations, norms, softmax float32 throughout). So "bf16 compute"
//         here = bf16 weights, fp32 arithmetic: the rounding of bf16 weights, float32 speed.
//   fp32: the fp16 weights stay zero-copy views of the mapping and are upcast per GEMM (exact):
//         results bit-identical to a resident model over the same file.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "omnibind/experts/eva18b_stream/eva18b_vision_fallback.h"
#include "omnibind/tensor_io/block_stream.h"

namespace omnibind::experts::eva18b_stream {

struct StreamedVisionStats {
  double embed_seconds = 0;    // patch embedding
  double wait_seconds = 0;     // blocked waiting for pages (disk not hidden behind compute)
  double build_seconds = 0;    // building blocks from the pages (dtype conversion for bf16)
  double compute_seconds = 0;  // block forwards
  double release_seconds = 0;  // madvise + fadvise
  double finish_seconds = 0;   // final norm + head
  double total_seconds = 0;
  int64_t blocks_run = 0;
  std::vector<double> block_seconds;  // wait + build + compute + release per block
};

class StreamedVision {
 public:
  // `dict`: the checkpoint's tensors, mapped (load_checkpoint); the caller keeps it alive. Checks
  // names/shapes of the resident parts now and of each block when it is streamed (InputError
  // naming the file). `stream.what` defaults to "EVA-CLIP-18B vision".
  StreamedVision(const tensor_io::StateDict& dict, const VisionConfig& config, at::ScalarType compute,
                 tensor_io::BlockStreamOptions stream = {}, const std::string& prefix = "visual.");

  // pixels [B, 3, 224, 224] -> features [B, E] float32 (before normalisation). max_blocks >= 0 runs
  // only the first blocks (benchmarks: the features are then meaningless).
  at::Tensor forward(const at::Tensor& pixels, StreamedVisionStats* stats = nullptr, int64_t max_blocks = -1);

  const VisionConfig& config() const { return config_; }
  const tensor_io::BlockStream& stream() const { return *stream_; }

 private:
  VisionConfig config_;
  at::ScalarType compute_;
  std::string prefix_;
  VisionEnds ends_;
  std::unique_ptr<tensor_io::BlockStream> stream_;
};

}  // namespace omnibind::experts::eva18b_stream
