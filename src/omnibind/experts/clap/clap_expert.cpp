#include "omnibind/experts/clap/clap_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/audio_text/audio_text_inputs.h"
#include "omnibind/experts/clap/clap_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/preprocess/clap_mel.h"
#include "omnibind/preprocess/roberta_tokenizer.h"
#include "omnibind/preprocess/tokenizer_files.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::experts {
namespace {

using clap::ClapConfig;
using clap::ClapModel;

class ClapExpert : public Expert {
 public:
  ClapExpert(const ExpertOptions& o, preprocess::ClapDrawsTable draws) : draws_(std::move(draws)) {
    const at::ScalarType dtype = audio_text::parse_precision(o.precision, "clap");
    require(!o.weights.empty(),
            "clap needs a checkpoint (--weights 630k-fusion-best.pt | "
            "music_speech_audioset_epoch_15_esc_89.98.pt)");
    require(o.size.empty() || o.size == "fusion" || o.size == "base",
            "unknown CLAP size '" + o.size + "' (expected fusion = CLAP_G or base = CLAP_M)");
    if (!o.crop_draws.empty()) draws_ = preprocess::read_clap_draws_file(o.crop_draws);
    if (o.threads > 0) tensor_io::set_compute_threads(o.threads);
    weights_ = std::make_shared<tensor_io::StateDict>(open_weights(o.weights));
    const auto found = audio_text::require_family(*weights_, /*want_wavcaps=*/false);
    const bool file_fusion = found.family == audio_text::Family::ClapFusion;
    const std::string file_size = file_fusion ? "fusion" : "base";
    require(o.size.empty() || o.size == file_size,
            o.weights + ": this CLAP checkpoint is a " +
                std::string(file_fusion ? "fusion (CLAP_G)" : "non-fusion (CLAP_M)") + " model, not --size " + o.size);
    ClapConfig config =
        o.config.empty() ? clap::clap_released_config(file_size) : clap::clap_config_from_json_file(o.config);
    require(config.fusion() == file_fusion, o.weights + ": the checkpoint is a " + file_size + " model but " +
                                                o.config + " describes a " +
                                                (config.fusion() ? "fusion" : "non-fusion") + " one");
    model_ = std::make_unique<ClapModel>(audio_text::with_config_hint(*weights_, o.config, [&] {
      return ClapModel::load(WeightSource(*weights_, at::kFloat, "CLAP", found.prefix), config, dtype);
    }));
    key_ = clap::clap_key(config.fusion());
    if (!o.vocab_files.empty()) {
      const auto files = preprocess::pick_bpe_files(o.vocab_files, "clap");
      const std::string& vocab = files.vocab_json;
      tokenizer_ = std::make_unique<preprocess::RobertaBpeTokenizer>(vocab, files.merges_txt);
      audio_text::check_vocab_size(vocab, tokenizer_->vocab_size(), config.text.vocab_size, "CLAP");
      require(tokenizer_->pad_id() == config.text.pad_token_id,
              vocab + ": <pad> has id " + std::to_string(tokenizer_->pad_id()) + " but the model's padding_idx is " +
                  std::to_string(config.text.pad_token_id));
    }
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return key_; }
  std::vector<Modality> modalities() const override { return {Modality::Audio, Modality::Text}; }
  int64_t dim() const override { return model_->config.embed_dim(); }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    const auto& c = model_->config;
    if (m == Modality::Audio) {
      media::Audio audio = audio_text::decode_audio(in);
      const preprocess::ClapDraws draws = find_draws(in);
      auto x = audio_text::with_input_name(
          in, [&] { return preprocess::clap_audio_input(audio, c.fusion(), in.describe(), c.audio, draws); });
      c10::InferenceMode guard;
      if (!c.fusion()) return model_->logmel(x.waveform).contiguous();  // [T, F]
      const int64_t T = c.frames(), F = c.audio.mel_bins;
      at::Tensor packed = at::zeros({4, T + 1, F}, at::kFloat);
      packed.narrow(1, 0, T).copy_(x.mel_fusion);
      packed[0][T].fill_(x.longer ? 1.0 : 0.0);
      return packed;  // [4, T + 1, F]
    }
    if (m == Modality::Text) {
      require(tokenizer_ != nullptr,
              "clap text needs the RoBERTa tokenizer files (--vocab vocab.json --vocab merges.txt)");
      auto batch = audio_text::with_text_name(in, [&] {
        return tokenizer_->encode_batch({in.text}, c.text_max_length, preprocess::TextPadding::kMaxLength);
      });
      return at::stack({batch.input_ids[0], batch.attention_mask[0]}).to(at::kLong);  // [2, 77]
    }
    throw InputError("clap embeds audio and text, not " + std::string(modality_name(m)));
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    if (batch.defined() && batch.dim() > 0 && batch.size(0) == 0 && covers(m)) return at::zeros({0, dim()}, at::kFloat);
    const auto& c = model_->config;
    const int64_t T = c.frames(), F = c.audio.mel_bins;
    if (m == Modality::Audio) {
      if (c.fusion()) {
        require(batch.dim() == 4 && batch.size(1) == 4 && batch.size(2) == T + 1 && batch.size(3) == F,
                "clap audio batch has shape " + audio_text::shape_string(batch) + ", expected [B, 4, " +
                    std::to_string(T + 1) + ", " + std::to_string(F) + "] (mel_fusion + flag from preprocess)");
        at::Tensor flags = batch.select(2, T).select(2, 0).select(1, 0).to(at::kFloat);  // [B]
        std::vector<bool> longer;
        for (int64_t i = 0; i < batch.size(0); ++i) longer.push_back(flags[i].item<float>() > 0.5f);
        return model_->audio_embed(batch.narrow(2, 0, T), longer);
      }
      require(batch.dim() == 3 && batch.size(1) == T && batch.size(2) == F,
              "clap audio batch has shape " + audio_text::shape_string(batch) + ", expected [B, " + std::to_string(T) +
                  ", " + std::to_string(F) + "] (log-mel from preprocess)");
      return model_->audio_embed(batch.unsqueeze(1));
    }
    if (m == Modality::Text) {
      require(batch.dim() == 3 && batch.size(1) == 2 && batch.size(2) == c.text_max_length,
              "clap text batch has shape " + audio_text::shape_string(batch) + ", expected [B, 2, " +
                  std::to_string(c.text_max_length) + "] (ids and mask from preprocess)");
      at::Tensor b = batch.to(at::kLong);
      return model_->text_embed(b.select(1, 0), b.select(1, 1));
    }
    throw InputError("clap embeds audio and text, not " + std::string(modality_name(m)));
  }

 private:
  preprocess::ClapDraws find_draws(const MediaInput& in) const {
    for (const std::string* key : {&in.path, &in.name_hint})
      if (!key->empty())
        if (const auto* d = preprocess::find_clap_draws(draws_, *key)) return *d;
    return {};
  }

  std::string name_ = "clap", key_;
  preprocess::ClapDrawsTable draws_;
  std::shared_ptr<tensor_io::StateDict> weights_;
  std::unique_ptr<ClapModel> model_;
  std::unique_ptr<preprocess::RobertaBpeTokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<Expert> make_clap_expert(const ExpertOptions& options, preprocess::ClapDrawsTable draws) {
  return std::make_unique<ClapExpert>(options, std::move(draws));
}

void register_clap_expert() {
  register_expert("clap",
                  "LAION-CLAP (audio, text; --size fusion = CLAP_G | base = CLAP_M; --vocab vocab.json --vocab "
                  "merges.txt; --crop-draws FILE; fp32/bf16)",
                  [](const ExpertOptions& o) { return make_clap_expert(o); });
}

}  // namespace omnibind::experts
