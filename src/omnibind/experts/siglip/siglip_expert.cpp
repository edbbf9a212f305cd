// Expert "siglip". encode() returns SiglipModel's image_embeds / text_embeds normalised once more
// (OmniBind normalises them twice more: x / x.norm() then F.normalize, a change below 3e-8).
#include "omnibind/experts/siglip/siglip_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert_messages.h"
#include "omnibind/experts/siglip/siglip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/siglip_image.h"
#include "omnibind/preprocess/siglip_tokenizer.h"

namespace omnibind::experts {

namespace {
using siglip::SiglipConfig;
using siglip::SiglipModel;

// No --size / --config: the released size whose patch embedding has this checkpoint's shape.
SiglipConfig config_from_checkpoint(const tensor_io::StateDict& sd, const std::string& path) {
  const std::string key = "vision_model.embeddings.patch_embedding.weight";
  require(sd.contains(key), path + ": missing tensor '" + key + "' (not a SigLIP checkpoint?)");
  const auto& shape = sd.at(key).shape;
  for (const char* size : {"large16", "so400m14"}) {
    SiglipConfig c = siglip::builtin_config(size);
    if (shape == std::vector<int64_t>{c.dim(), c.channels, c.patch, c.patch}) return c;
  }
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  throw InputError(path + ": patch embedding [" + s + "] is neither released SigLIP size (large16 [1024, 3, 16, 16], " +
                   "so400m14 [1152, 3, 14, 14]); give --config config.json");
}

// The SentencePiece model among --vocab files: the only one, or the one named *.model.
std::string spiece_file(const std::vector<std::string>& files) {
  if (files.empty()) return "";
  if (files.size() == 1) return files[0];
  std::string found;
  for (const auto& f : files)
    if (std::filesystem::path(f).extension() == ".model") {
      require(found.empty(), "siglip: more than one SentencePiece model among --vocab (" + found + ", " + f + ")");
      found = f;
    }
  require(!found.empty(), "siglip: --vocab names " + std::to_string(files.size()) +
                              " files and none is a SentencePiece .model (give spiece.model)");
  return found;
}

class SiglipExpert : public Expert {
 public:
  explicit SiglipExpert(const ExpertOptions& o) : name_("siglip") {
    require(o.precision == "fp32" || o.precision == "bf16",
            "unknown precision '" + o.precision + "' (expected fp32 or bf16)");
    require(!o.weights.empty(), "siglip needs a weights file (--weights model.safetensors)");
    weights_ = std::make_shared<tensor_io::StateDict>(open_weights(o.weights));
    SiglipConfig config = !o.config.empty() ? siglip::load_config(o.config)
                          : !o.size.empty() ? siglip::builtin_config(o.size)
                                            : config_from_checkpoint(*weights_, o.weights);
    if (!o.config.empty() && !o.size.empty()) config.key = siglip::builtin_config(o.size).key;
    model_ = SiglipModel::load(config, WeightSource(*weights_, o.precision == "bf16" ? at::kBFloat16 : at::kFloat,
                                                    "SigLIP"));
    // The tokenizer file: --vocab; else the single tokenizer path that bundles (manifest "bpe") and
    // `serve --bpe-vocab` carry.
    std::string spiece = spiece_file(o.vocab_files);
    if (spiece.empty()) spiece = o.bpe_vocab;
    if (!spiece.empty()) tokenizer_ = std::make_unique<preprocess::SiglipTokenizer>(spiece);
    if (tokenizer_)
      require(tokenizer_->vocab_size() <= config.vocab_size,
              spiece + ": " + std::to_string(tokenizer_->vocab_size()) + " pieces, more than the model's " +
                  std::to_string(config.vocab_size) + " token embeddings");
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return model_.config.key; }
  std::vector<Modality> modalities() const override { return {Modality::Image, Modality::Text}; }
  int64_t dim() const override { return model_.config.dim(); }
  const SiglipConfig& config() const { return model_.config; }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    switch (m) {
      case Modality::Image: {
        auto img = in.path.empty() ? media::decode_image_bytes(in.bytes, in.describe()) : media::decode_image_file(in.path);
        try {
          return preprocess::siglip_image_input(img, static_cast<int>(model_.config.image_size));
        } catch (const InputError& e) {
          throw InputError(in.describe() + ": " + e.what());
        }
      }
      case Modality::Text:
        require(tokenizer_ != nullptr, "siglip text needs the SentencePiece model (--vocab spiece.model)");
        try {
          return tokenizer_->tokenize({in.text}, model_.config.context)[0];
        } catch (const InputError& e) {
          std::string msg = e.what();
          throw InputError(msg.rfind("text ", 0) == 0 ? msg : "text " + describe_text(in.text) + ": " + msg);
        }
      default: break;
    }
    throw InputError("siglip does not embed " + std::string(modality_name(m)) + " (it covers image, text)");
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    const auto& c = model_.config;
    switch (m) {
      case Modality::Image:
        require(batch.dim() == 4 && batch.size(1) == 3 && batch.size(2) == c.image_size && batch.size(3) == c.image_size,
                "siglip image batch has shape " + shape_of(batch) + ", expected [B, 3, " + std::to_string(c.image_size) +
                    ", " + std::to_string(c.image_size) + "]");
        return unit_rows(model_.image_embeds(batch.to(at::kFloat)));
      case Modality::Text:
        require(batch.dim() == 2 && batch.size(1) == c.context && batch.scalar_type() == at::kLong,
                "siglip text batch has shape " + shape_of(batch) + ", expected int64 [B, " +
                    std::to_string(c.context) + "]");
        require(batch.numel() == 0 || (batch.min().item<int64_t>() >= 0 && batch.max().item<int64_t>() < c.vocab_size),
                "siglip text batch has token ids outside [0, " + std::to_string(c.vocab_size) + ")");
        return unit_rows(model_.text_embeds(batch));
      default: break;
    }
    throw InputError("siglip does not embed " + std::string(modality_name(m)) + " (it covers image, text)");
  }

 private:

  std::string name_;
  std::shared_ptr<tensor_io::StateDict> weights_;  // owns the mmap the fp32 weights point into
  SiglipModel model_;
  std::unique_ptr<preprocess::SiglipTokenizer> tokenizer_;
};
}  // namespace

std::unique_ptr<Expert> make_siglip_expert(const ExpertOptions& options) {
  return std::make_unique<SiglipExpert>(options);
}

std::string describe_siglip_checkpoint(const tensor_io::StateDict& sd) {
  if (!sd.contains("vision_model.head.probe") || !sd.contains("text_model.head.weight") ||
      !sd.contains("vision_model.embeddings.patch_embedding.weight"))
    return "";
  const auto& shape = sd.at("vision_model.embeddings.patch_embedding.weight").shape;
  for (const char* size : {"large16", "so400m14"}) {
    const SiglipConfig c = siglip::builtin_config(size);
    if (shape == std::vector<int64_t>{c.dim(), c.channels, c.patch, c.patch})
      return std::string("SigLIP checkpoint (expert siglip, --size ") + size + ", key " + c.key + ")";
  }
  return "SigLIP checkpoint (expert siglip, custom width: needs --config)";
}

void register_siglip_expert() {
  register_expert("siglip",
                  "SigLIP (image, text; --size large16 = SigLip_384 | so400m14 = SigLip_400M_384, or --config; "
                  "--vocab spiece.model; fp32/bf16)",
                  make_siglip_expert);
}

}  // namespace omnibind::experts
