// Expert "open_clip" (key DFN_H14). preprocess = OmniBind's DFN_H14 path: Image.open(f).convert('RGB')
// -> the hub preprocess_cfg (squash to 224 with PIL bicubic, OpenAI mean/std) / open_clip's
// SimpleTokenizer (context 77, <start_of_text>/<end_of_text>); encode = encode_image / encode_text
// divided by the norm.
#include "omnibind/experts/open_clip/open_clip_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert_messages.h"
#include "omnibind/experts/open_clip/open_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/clip_image.h"
#include "omnibind/preprocess/clip_tokenizer.h"

namespace omnibind::experts::open_clip {

namespace {

// The family name in key errors ("... not a <family> checkpoint").
constexpr const char* kFamily = "open_clip (DFN5B-CLIP)";

class OpenClipExpert : public Expert {
 public:
  explicit OpenClipExpert(const ExpertOptions& o) : name_("open_clip") {
    require(o.precision == "fp32" || o.precision == "bf16",
            "unknown precision '" + o.precision + "' (expected fp32 or bf16)");
    require(!o.weights.empty(), "open_clip needs a weights file (--weights open_clip_pytorch_model.bin)");
    config_ = !o.config.empty() ? load_config(o.config) : builtin_config(o.size.empty() ? "dfn5b-h14" : o.size);
    weights_ = std::make_shared<tensor_io::StateDict>(open_weights(o.weights));
    // open_clip's load_checkpoint strips a DataParallel "module." prefix (judged by the first key).
    const auto names = weights_->names();
    const std::string prefix = !names.empty() && names.front().rfind("module.", 0) == 0 ? "module." : "";
    const auto dtype = o.precision == "bf16" ? at::kBFloat16 : at::kFloat;
    model_ = OpenClipModel::load(WeightSource(*weights_, dtype, kFamily, prefix), config_);
    if (!o.bpe_vocab.empty())
      tokenizer_ = std::make_unique<preprocess::ClipTokenizer>(o.bpe_vocab, preprocess::ClipTokenizer::Specials::OpenClip);
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return "DFN_H14"; }
  std::vector<Modality> modalities() const override { return {Modality::Image, Modality::Text}; }
  int64_t dim() const override { return config_.embed_dim; }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    if (m == Modality::Image) {
      auto img = in.path.empty() ? media::decode_image_bytes(in.bytes, in.describe()) : media::decode_image_file(in.path);
      const auto resize = config_.resize_mode == ResizeMode::Squash ? preprocess::ImageResize::Squash
                                                                    : preprocess::ImageResize::ShortestCrop;
      try {
        return preprocess::clip_image_input(img, static_cast<int>(config_.image_size), resize,
                                            preprocess::PixelScale::ToTensor, config_.mean, config_.std);
      } catch (const InputError& e) {
        throw InputError(in.describe() + ": " + e.what());
      }
    }
    if (m == Modality::Text) {
      require(tokenizer_ != nullptr, "open_clip text needs the BPE vocabulary (--bpe bpe_simple_vocab_16e6.txt.gz)");
      try {
        return tokenizer_->tokenize({in.text}, config_.context_length)[0];
      } catch (const InputError& e) {
        throw InputError("text " + describe_text(in.text) + ": " + e.what());
      }
    }
    throw InputError("open_clip does not embed " + std::string(modality_name(m)) + " (it covers image, text)");
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    const auto& c = config_;
    if (m == Modality::Image) {
      require(batch.dim() == 4 && batch.size(1) == 3 && batch.size(2) == c.image_size && batch.size(3) == c.image_size,
              "open_clip image batch has shape " + shape_of(batch) + ", expected [B, 3, " + std::to_string(c.image_size) +
                  ", " + std::to_string(c.image_size) + "]");
      return unit_rows(model_.encode_image(batch.to(at::kFloat)));
    }
    if (m == Modality::Text) {
      require(batch.dim() == 2 && batch.size(1) == c.context_length && batch.scalar_type() == at::kLong,
              "open_clip text batch has shape " + shape_of(batch) + ", expected int64 [B, " +
                  std::to_string(c.context_length) + "]");
      require(batch.numel() == 0 || (batch.min().item<int64_t>() >= 0 && batch.max().item<int64_t>() < c.vocab_size),
              "open_clip text batch has token ids outside [0, " + std::to_string(c.vocab_size) + ")");
      return unit_rows(model_.encode_text(batch));
    }
    throw InputError("open_clip does not embed " + std::string(modality_name(m)) + " (it covers image, text)");
  }

 private:
  // OmniBind: x / x.norm(dim=-1, keepdim=True), then F.normalize (eps 1e-12).

  std::string name_;
  OpenClipConfig config_;
  std::shared_ptr<tensor_io::StateDict> weights_;  // owns the mmap the fp32 weights point into
  OpenClipModel model_;
  std::unique_ptr<preprocess::ClipTokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<Expert> make_open_clip_expert(const ExpertOptions& options) {
  return std::make_unique<OpenClipExpert>(options);
}

void register_open_clip_expert() {
  register_expert("open_clip",
                  "open_clip CLIP, DFN5B-CLIP-ViT-H-14 = OmniBind DFN_H14 (image, text; --size dfn5b-h14 or --config "
                  "open_clip_config.json; --bpe; fp32/bf16)",
                  make_open_clip_expert);
}

}  // namespace omnibind::experts::open_clip
