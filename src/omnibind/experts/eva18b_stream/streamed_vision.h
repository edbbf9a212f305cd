// EVA-CLIP-18B's vision tower run from a mapped checkpoint that does not fit in memory, on the
// block-level API of experts/eva_clip/eva_clip_model.h (EvaVisionTower: embed_patches, load_block,
// run_block, finish): the patch embedding, cls/pos tables, final norm and head (~25 MB) are
// resident; the 48 blocks (734 MB each in 16 bits) are streamed through tensor_io::BlockStream one
// at a time, the next block(s) paged in on a worker while the current one computes, and released
// behind. All images of a call go through a block before the next block is read, so the file is
// read once per call (per batch), not once per image. Works for both key layouts (the released
// .pt names and the Hugging Face shards: blocks may span several mapped files).
//
// Precision (experts/mixed_matmul.h, the project's one matmul rule), from a float16 file:
//   bf16: each block's weights are converted fp16 -> bfloat16 when the block is built (734 MB of
//         heap at the official widths; the block's mapped pages are released right then, before
//         its compute); on CPUs without native bf16 (this one: AVX2 only) each GEMM upcasts its bf16
//         weight to float32 exactly and multiplies in float32; activations, norms and softmax are
//         float32 throughout. So "bf16 compute" here = bf16-rounded weights, float32 arithmetic
//         (float32 speed, half the weight memory of fp32). On AVX512_BF16/AMX CPUs: bf16 GEMMs.
//   fp32: the fp16 weights stay zero-copy views of the mapping, upcast per GEMM (exact): results
//         bit-identical to the resident EvaVisionTower::forward over the same file.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "omnibind/experts/eva_clip/eva_clip_model.h"
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
  // `dict`: the checkpoint's tensors, mapped (eva_clip::open_checkpoint / load_checkpoint); the
  // caller keeps it alive. Loads and checks the resident parts now, each block's names/shapes when
  // it is streamed (InputError naming the file), with strict coverage per block.
  // `stream.what` defaults to "EVA-CLIP-18B vision".
  StreamedVision(const tensor_io::StateDict& dict, const eva_clip::EvaVisionConfig& config, int64_t embed_dim,
                 at::ScalarType compute, tensor_io::BlockStreamOptions stream = {},
                 eva_clip::EvaKeyLayout layout = eva_clip::EvaKeyLayout::Official);

  // pixels [B, 3, 224, 224] -> features [B, E] float32 (before normalisation), what
  // EvaVisionTower::forward gives. Benchmarks only (the features are then meaningless): max_blocks
  // >= 0 runs only the first blocks; max_seconds > 0 stops after the block that passes it.
  at::Tensor forward(const at::Tensor& pixels, StreamedVisionStats* stats = nullptr, int64_t max_blocks = -1,
                     double max_seconds = 0);

  const eva_clip::EvaVisionTower& tower() const { return tower_; }
  const tensor_io::BlockStream& stream() const { return *stream_; }

 private:
  at::ScalarType compute_;
  eva_clip::EvaVisionTower tower_;  // without blocks
  std::unique_ptr<tensor_io::BlockStream> stream_;
};

}  // namespace omnibind::experts::eva18b_stream
