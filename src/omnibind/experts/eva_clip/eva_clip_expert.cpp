#include "omnibind/experts/eva_clip/eva_clip_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdlib>
#include <mutex>

#include "omnibind/common/error.h"
#include "omnibind/experts/eva18b_stream/streamed_vision.h"
#include "omnibind/experts/expert_messages.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/clip_image.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/tensor_io/block_stream.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::experts::eva_clip {
namespace {

// Whether the model keeps tensors of file dtype `d` as views into the mapped file when computing in
// `t` (experts/mixed_matmul.h: bf16 keeps bf16; fp32 keeps float32, bf16 and float16 matmul weights).
bool kept_as_stored(tensor_io::DType d, at::ScalarType t) {
  using D = tensor_io::DType;
  if (t == at::kBFloat16) return d == D::BF16;
  return d == D::F32 || d == D::BF16 || d == D::F16;
}

// Whether a vision tower whose blocks are `block_bytes` is streamed from the mapped file block by block
// (experts/eva18b_stream: EVA-CLIP-18B's 35 GB of blocks do not fit a 24 GB machine) instead of
// loaded: OMNIBIND_STREAM_VISION=always|never decides; otherwise when the blocks would take more than
// half of the memory available now. Streaming gives the same numbers (bit-identical at fp32).
bool stream_vision_tower(uint64_t block_bytes, const std::string& name) {
  const char* env = std::getenv("OMNIBIND_STREAM_VISION");
  const std::string mode = env ? env : "";
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (!mode.empty() && mode != "auto")
    throw InputError(name + ": OMNIBIND_STREAM_VISION must be always, never or auto, got '" + mode + "'");
  const uint64_t available = tensor_io::memory_available_bytes();
  return available > 0 && block_bytes > available / 2;
}

// What differs between the two registered EVA-CLIP experts (OmniBind's EVA_E14p and EVA_18B).
struct Variant {
  std::string name, key;        // registered name, OmniBind key
  std::string default_size;     // builtin_config() name when neither --size nor --config is given
  std::string weights_hint;     // the released file, for "needs a weights file"
  int64_t text_tokens = 0;      // 0: the model's context; else OmniBind's tokenizer max_length (42)
  bool crop_choice = false;     // --image-crop round|floor accepted
  bool can_stream = false;      // the vision tower may be streamed (stream_vision_tower)
};

const Variant kEvaE14p{"eva_clip", "EVA_E14p", "", "EVA02_CLIP_E_psz14_plus_s9B.pt", 0, false, false};
// OmniBind's EVA_18B: CLIPTokenizer(max_length=42, truncation=True): SOT + at most 40 tokens + EOT.
const Variant kEva18b{"eva_clip_18b", "EVA_18B", "EVA-CLIP-18B", "EVA_CLIP_18B_psz14_s6B.fp16.pt", 42, true, true};

class EvaClipExpert : public Expert {
 public:
  EvaClipExpert(const ExpertOptions& o, const Variant& v) : variant_(v), name_(v.name) {
    at::ScalarType dtype;
    if (o.precision == "fp32" || o.precision.empty()) dtype = at::kFloat;
    else if (o.precision == "bf16") dtype = at::kBFloat16;
    else throw InputError(name_ + ": unknown precision '" + o.precision + "' (expected fp32 or bf16)");
    if (o.image_crop.empty() || o.image_crop == "round") crop_ = preprocess::ImageResize::ShortestCrop;
    else if (o.image_crop == "floor" && v.crop_choice) crop_ = preprocess::ImageResize::ShortestCropFloor;
    else if (v.crop_choice) throw InputError(name_ + ": unknown --image-crop '" + o.image_crop + "' (expected round or floor)");
    else throw InputError(name_ + ": --image-crop is for eva_clip_18b (this expert crops as torchvision: round)");
    if (o.threads > 0) tensor_io::set_compute_threads(o.threads);
    const EvaClipConfig config = !o.config.empty() ? load_config(o.config) : builtin_config(o.size.empty() ? v.default_size : o.size);
    // Tokenizer first: a bad --bpe file fails before gigabytes of weights are mapped.
    if (!o.bpe_vocab.empty())
      tokenizer_ = std::make_unique<preprocess::ClipTokenizer>(o.bpe_vocab, preprocess::ClipTokenizer::Specials::OpenClip);
    require(!o.weights.empty(), name_ + " needs a weights file (--weights " + v.weights_hint + ")");
    ckpt_ = open_checkpoint(o.weights);
    require_config_matches(ckpt_, config, name_);
    require_complete(ckpt_, config);
    // The vision blocks' bytes as they would be held (16-bit files stay 16-bit in bf16 or stay mapped in fp32).
    std::vector<std::string> block_prefixes;
    for (int64_t i = 0; i < config.vision.layers; ++i) block_prefixes.push_back(EvaVisionTower::block_prefix(i, ckpt_.layout) + ".");
    uint64_t block_bytes = 0;
    for (const auto& n : ckpt_.dict->names())
      for (const auto& p : block_prefixes)
        if (n.rfind(p, 0) == 0) {
          const auto& raw = ckpt_.dict->at(n);
          block_bytes += static_cast<uint64_t>(raw.numel()) * (dtype == at::kBFloat16 ? 2 : tensor_io::dtype_size(raw.dtype));
          break;
        }
    const bool streamed = v.can_stream && stream_vision_tower(block_bytes, name_);
    WeightSource w(*ckpt_.dict, dtype, "EVA-CLIP");
    model_ = std::make_unique<EvaClipModel>(EvaClipModel::load(config, w, ckpt_.text_prefix, ckpt_.logit_scale_key,
                                                               streamed ? EvaClipModel::kText : EvaClipModel::kAll, ckpt_.layout));
    std::vector<std::string> ignored;
    if (streamed) {
      // The stem, final norm and head are loaded (and checked) by StreamedVision, each block (strictly)
      // when it is streamed; the text tower stays resident.
      streamed_vision_ = std::make_unique<eva18b_stream::StreamedVision>(*ckpt_.dict, config.vision, config.embed_dim, dtype,
                                                                         tensor_io::BlockStreamOptions{}, ckpt_.layout);
      const std::vector<std::string> vision_roots = ckpt_.layout == EvaKeyLayout::HuggingFace
                                                        ? std::vector<std::string>{"vision_model.", "visual_projection."}
                                                        : std::vector<std::string>{"visual."};
      for (const auto& n : ckpt_.dict->names())
        for (const auto& r : vision_roots)
          if (n.rfind(r, 0) == 0) ignored.push_back(n);
    }
    // The reference's "logit_scale" is replaced by "text.logit_scale" when a file has both.
    if (ckpt_.logit_scale_key != "logit_scale") ignored.push_back("logit_scale");
    // transformers' persistent position-id buffers (older hub saves): not weights.
    if (ckpt_.layout == EvaKeyLayout::HuggingFace)
      for (const char* n : {"vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"}) ignored.push_back(n);
    w.require_all_used(ignored);
    // When every weight was converted (e.g. bf16 compute from a float32 file), nothing points into
    // the mapped file any more: unmap it so its pages leave the resident set. (fp32 compute from the
    // 16-bit release keeps its matmul weights mapped and upcasts them per matmul.)
    bool views = false;
    for (const auto& n : ckpt_.dict->names()) {
      const auto& raw = ckpt_.dict->at(n);  // (logit_scale, 0-d, is read as a number)
      views = views || (raw.numel() > 1 && kept_as_stored(raw.dtype, dtype));
    }
    if (!views && !streamed) ckpt_.dict.reset();
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return variant_.key; }
  std::vector<Modality> modalities() const override { return {Modality::Image, Modality::Text}; }
  int64_t dim() const override { return model_->config.embed_dim; }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    switch (m) {
      case Modality::Image: {
        auto img = in.path.empty() ? media::decode_image_bytes(in.bytes, in.describe()) : media::decode_image_file(in.path);
        try {
          // Shortest side 224 (PIL bicubic), centre crop (torchvision round, or HF floor + HF rescale),
          // OpenAI CLIP mean/std: ImageBind's vision input for the default rule.
          const auto scale = crop_ == preprocess::ImageResize::ShortestCropFloor ? preprocess::PixelScale::HfRescale
                                                                                 : preprocess::PixelScale::ToTensor;
          return preprocess::clip_image_input(img, static_cast<int>(model_->config.vision.image_size), crop_, scale,
                                              {0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711});
        } catch (const InputError& e) {
          throw InputError(in.describe() + ": " + e.what());
        }
      }
      case Modality::Text: {
        require(tokenizer_ != nullptr, name_ + " text needs the CLIP BPE vocabulary (--bpe bpe_simple_vocab_16e6.txt.gz)");
        try {
          // eva_clip.tokenize: [SOT] + BPE + [EOT]; longer than the context: first 77, last set to EOT.
          const int64_t ctx = model_->config.text.context_length;
          if (variant_.text_tokens <= 0 || variant_.text_tokens >= ctx) return tokenizer_->tokenize({in.text}, ctx)[0];
          // OmniBind's 42-token truncation, zero-padded to the model's context: under the causal mask
          // and first-EOT pooling, positions after the EOT cannot change the features.
          at::Tensor ids = at::zeros({ctx}, at::kLong);
          ids.narrow(0, 0, variant_.text_tokens).copy_(tokenizer_->tokenize({in.text}, variant_.text_tokens)[0]);
          return ids;
        } catch (const InputError& e) {
          throw InputError("text " + describe_text(in.text) + ": " + e.what());
        }
      }
      default: break;
    }
    throw InputError(name_ + " does not embed " + std::string(modality_name(m)) + " (it covers image and text)");
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    const auto& c = model_->config;
    switch (m) {
      case Modality::Image: {
        const int64_t s = c.vision.image_size;
        require(batch.dim() == 4 && batch.size(1) == 3 && batch.size(2) == s && batch.size(3) == s,
                name_ + " image batch has shape " + shape_of(batch) + ", expected [B, 3, " + std::to_string(s) + ", " +
                    std::to_string(s) + "]");
        if (streamed_vision_) {
          // One pass over the file per batch: every image goes through a block before the next is read.
          std::lock_guard<std::mutex> lock(stream_mutex_);
          return omnibind_normalize(streamed_vision_->forward(batch.to(at::kFloat)));
        }
        return omnibind_normalize(model_->encode_image(batch.to(at::kFloat)));
      }
      case Modality::Text: {
        const int64_t L = c.text.context_length;
        require(batch.dim() == 2 && batch.size(1) == L && batch.scalar_type() == at::kLong,
                name_ + " text batch has shape " + shape_of(batch) + ", expected int64 [B, " + std::to_string(L) + "]");
        require(batch.numel() == 0 || (batch.min().item<int64_t>() >= 0 && batch.max().item<int64_t>() < c.text.vocab_size),
                name_ + " text batch has token ids outside [0, " + std::to_string(c.text.vocab_size) + ")");
        return omnibind_normalize(model_->encode_text(batch));
      }
      default: break;
    }
    throw InputError(name_ + " does not embed " + std::string(modality_name(m)) + " (it covers image and text)");
  }

 private:
  const Variant variant_;
  std::string name_;
  preprocess::ImageResize crop_ = preprocess::ImageResize::ShortestCrop;
  EvaClipCheckpoint ckpt_;  // owns the mapped file the 16-bit (bf16) or float32 weights point into
  std::unique_ptr<EvaClipModel> model_;  // without vision blocks when streamed
  std::unique_ptr<eva18b_stream::StreamedVision> streamed_vision_;  // EVA-CLIP-18B's vision from the mapped file
  mutable std::mutex stream_mutex_;
  std::unique_ptr<preprocess::ClipTokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<Expert> make_eva_clip_expert(const ExpertOptions& options) {
  return std::make_unique<EvaClipExpert>(options, kEvaE14p);
}

std::unique_ptr<Expert> make_eva_clip_18b_expert(const ExpertOptions& options) {
  return std::make_unique<EvaClipExpert>(options, kEva18b);
}

void register_eva_clip_expert() {
  register_expert("eva_clip",
                  "EVA02-CLIP-bigE-14-plus (OmniBind EVA_E14p; image, text; --config JSON for other widths; fp32/bf16; --bpe for text)",
                  make_eva_clip_expert);
  register_expert("eva_clip_18b",
                  "EVA-CLIP-18B (OmniBind EVA_18B, Full preset; image, text at 42 tokens; .fp16.pt or Hugging Face "
                  "safetensors shards; --image-crop round|floor; --config JSON for other widths; fp32/bf16; --bpe for text)",
                  make_eva_clip_18b_expert);
}

}  // namespace omnibind::experts::eva_clip
