// Expert "imagebind". encode() returns unit rows: the reference's ImageBindModel.forward output
// divided by its norm (vision is already unit; text is unit * logit scale; audio is the mean over
// clips of unit * scale, so its direction is the normalised mean of the per-clip unit vectors).
#include "omnibind/experts/imagebind/imagebind_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert_messages.h"
#include "omnibind/experts/imagebind/imagebind_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/clip_tokenizer.h"
#include "omnibind/preprocess/imagebind_audio.h"
#include "omnibind/preprocess/imagebind_image.h"

namespace omnibind::experts {

namespace {
using imagebind::ImageBindModel;

class ImageBindExpert : public Expert {
 public:
  explicit ImageBindExpert(const ExpertOptions& o) : name_("imagebind") {
    require(o.precision == "fp32" || o.precision == "bf16",
            "unknown precision '" + o.precision + "' (expected fp32 or bf16)");
    require(!o.weights.empty(), "imagebind needs a weights file (--weights imagebind_huge.pth)");
    auto config = !o.config.empty() ? imagebind::load_config(o.config)
                                    : imagebind::builtin_config(o.size.empty() ? "huge" : o.size);
    weights_ = std::make_shared<tensor_io::StateDict>(open_weights(o.weights));
    model_ = ImageBindModel::load(config, WeightSource(*weights_, o.precision == "bf16" ? at::kBFloat16 : at::kFloat, "ImageBind"));
    if (!o.bpe_vocab.empty()) tokenizer_ = std::make_unique<preprocess::ClipTokenizer>(o.bpe_vocab);
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return "IB"; }
  std::vector<Modality> modalities() const override { return {Modality::Image, Modality::Audio, Modality::Text}; }
  int64_t dim() const override { return model_.config.out_dim; }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    switch (m) {
      case Modality::Image: {
        auto img = in.path.empty() ? media::decode_image_bytes(in.bytes, in.describe()) : media::decode_image_file(in.path);
        return preprocess::imagebind_image_input(img);
      }
      case Modality::Audio: {
        auto audio = in.path.empty() ? media::decode_audio_bytes(in.bytes, in.describe()) : media::decode_audio_file(in.path);
        try {
          return preprocess::imagebind_audio_input(audio);
        } catch (const InputError& e) {
          throw InputError(in.describe() + ": " + e.what());
        }
      }
      case Modality::Text: {
        require(tokenizer_ != nullptr, "imagebind text needs the BPE vocabulary (--bpe bpe_simple_vocab_16e6.txt.gz)");
        try {
          return tokenizer_->tokenize({in.text}, model_.config.context_length)[0];
        } catch (const InputError& e) {
          throw InputError("text " + describe_text(in.text) + ": " + e.what());
        }
      }
      default: break;
    }
    throw InputError("imagebind does not embed " + std::string(modality_name(m)) + " (it covers image, audio, text)");
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    const auto& c = model_.config;
    switch (m) {
      case Modality::Image:
        require(batch.dim() == 4 && batch.size(1) == 3 && batch.size(2) == c.image_size && batch.size(3) == c.image_size,
                "imagebind image batch has shape " + shape_of(batch) + ", expected [B, 3, 224, 224]");
        return unit_rows(model_.vision_embed(batch.to(at::kFloat)));
      case Modality::Audio:
        require(batch.dim() == 5 && batch.size(2) == 1 && batch.size(3) == c.audio_mel_bins &&
                    batch.size(4) == c.audio_target_len,
                "imagebind audio batch has shape " + shape_of(batch) + ", expected [B, clips, 1, 128, 204]");
        return unit_rows(model_.audio_embed(batch.to(at::kFloat)));
      case Modality::Text: {
        require(batch.dim() == 2 && batch.size(1) == c.context_length && batch.scalar_type() == at::kLong,
                "imagebind text batch has shape " + shape_of(batch) + ", expected int64 [B, 77]");
        require(batch.numel() == 0 || (batch.min().item<int64_t>() >= 0 && batch.max().item<int64_t>() < c.vocab_size),
                "imagebind text batch has token ids outside [0, 49408)");
        return unit_rows(model_.text_embed(batch));
      }
      default: break;
    }
    throw InputError("imagebind does not embed " + std::string(modality_name(m)) + " (it covers image, audio, text)");
  }

 private:

  std::string name_;
  std::shared_ptr<tensor_io::StateDict> weights_;  // owns the mmap the fp32 weights point into
  ImageBindModel model_;
  std::unique_ptr<preprocess::ClipTokenizer> tokenizer_;
};
}  // namespace

std::unique_ptr<Expert> make_imagebind_expert(const ExpertOptions& options) {
  return std::make_unique<ImageBindExpert>(options);
}

void register_imagebind_expert() {
  register_expert("imagebind", "ImageBind (image, audio, text; --size huge or --config JSON; fp32/bf16)",
                  make_imagebind_expert);
}

}  // namespace omnibind::experts
