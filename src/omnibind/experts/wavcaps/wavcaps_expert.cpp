#include "omnibind/experts/wavcaps/wavcaps_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/audio_text/audio_text_inputs.h"
#include "omnibind/experts/wavcaps/wavcaps_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/experts/weights_file.h"
#include "omnibind/preprocess/audio_waveform.h"
#include "omnibind/preprocess/bert_tokenizer.h"
#include "omnibind/preprocess/tokenizer_files.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace omnibind::experts {
namespace {

using wavcaps::WavCapsConfig;
using wavcaps::WavCapsModel;

class WavCapsExpert : public Expert {
 public:
  explicit WavCapsExpert(const ExpertOptions& o) {
    const at::ScalarType dtype = audio_text::parse_precision(o.precision, "wavcaps");
    require(!o.weights.empty(),
            "wavcaps needs a checkpoint (--weights HTSAT-BERT-PT.pt | HTSAT-BERT-FT-AudioCaps.pt | "
            "HTSAT-BERT-FT-Clotho.pt)");
    require(o.crop_draws.empty(),
            "wavcaps has no random crops (it keeps the first 10 s of longer clips); "
            "--crop-draws is for --expert clap");
    size_ = wavcaps::wavcaps_size(o.size, o.weights);
    key_ = wavcaps::wavcaps_key(size_);
    WavCapsConfig config =
        o.config.empty() ? wavcaps::wavcaps_released_config() : wavcaps::wavcaps_config_from_json_file(o.config);
    if (o.threads > 0) tensor_io::set_compute_threads(o.threads);
    weights_ = std::make_shared<tensor_io::StateDict>(open_weights(o.weights));
    const auto found = audio_text::require_family(*weights_, /*want_wavcaps=*/true);
    model_ = std::make_unique<WavCapsModel>(audio_text::with_config_hint(*weights_, o.config, [&] {
      return WavCapsModel::load(WeightSource(*weights_, at::kFloat, "WavCaps", found.prefix), config, dtype);
    }));
    if (!o.vocab_files.empty()) {
      const std::string vocab = preprocess::pick_wordpiece_vocab(o.vocab_files, "wavcaps");
      tokenizer_ = std::make_unique<preprocess::BertWordPieceTokenizer>(vocab);
      audio_text::check_vocab_size(vocab, tokenizer_->vocab_size(), config.text.vocab_size, "WavCaps");
    }
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return key_; }
  std::vector<Modality> modalities() const override { return {Modality::Audio, Modality::Text}; }
  int64_t dim() const override { return model_->config.embed_size(); }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    const auto& c = model_->config;
    if (m == Modality::Audio) {
      media::Audio audio = audio_text::decode_audio(in);
      preprocess::WavcapsAudioConfig ac;
      ac.sample_rate = c.sample_rate;
      ac.clip_samples = c.clip_samples;
      std::vector<float> wave =
          audio_text::with_input_name(in, [&] { return preprocess::wavcaps_waveform(audio, in.describe(), ac); });
      at::Tensor x = at::from_blob(wave.data(), {static_cast<int64_t>(wave.size())}, at::kFloat);
      c10::InferenceMode guard;
      return model_->logmel(x).contiguous();  // [T, F]
    }
    if (m == Modality::Text) {
      require(tokenizer_ != nullptr, "wavcaps text needs the bert-base-uncased vocabulary (--vocab vocab.txt)");
      auto batch = audio_text::with_text_name(in, [&] {
        return tokenizer_->encode_batch({in.text}, c.text_max_length, preprocess::TextPadding::kMaxLength);
      });
      return at::stack({batch.input_ids[0], batch.attention_mask[0]}).to(at::kLong);  // [2, 30]
    }
    throw InputError("wavcaps embeds audio and text, not " + std::string(modality_name(m)));
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    c10::InferenceMode guard;
    if (batch.defined() && batch.dim() > 0 && batch.size(0) == 0 && covers(m)) return at::zeros({0, dim()}, at::kFloat);
    const auto& c = model_->config;
    if (m == Modality::Audio) {
      require(batch.dim() == 3 && batch.size(1) == c.frames() && batch.size(2) == c.htsat.mel_bins,
              "wavcaps audio batch has shape " + audio_text::shape_string(batch) + ", expected [B, " +
                  std::to_string(c.frames()) + ", " + std::to_string(c.htsat.mel_bins) + "] (log-mel from preprocess)");
      return model_->audio_embed(batch);
    }
    if (m == Modality::Text) {
      require(batch.dim() == 3 && batch.size(1) == 2 && batch.size(2) == c.text_max_length,
              "wavcaps text batch has shape " + audio_text::shape_string(batch) + ", expected [B, 2, " +
                  std::to_string(c.text_max_length) + "] (ids and mask from preprocess)");
      std::vector<at::Tensor> out;
      for (int64_t begin = 0; begin < batch.size(0); begin += c.text_batch) {
        const int64_t n = std::min(c.text_batch, batch.size(0) - begin);
        at::Tensor group = batch.narrow(0, begin, n).to(at::kLong);
        at::Tensor ids = group.select(1, 0), mask = group.select(1, 1);
        // padding='longest': the group is as long as its longest text.
        const int64_t len = std::max<int64_t>(1, mask.sum(1).max().item<int64_t>());
        out.push_back(model_->text_embed(ids.narrow(1, 0, len), mask.narrow(1, 0, len)));
      }
      return at::cat(out);
    }
    throw InputError("wavcaps embeds audio and text, not " + std::string(modality_name(m)));
  }

 private:
  std::string name_ = "wavcaps", size_, key_;
  std::shared_ptr<tensor_io::StateDict> weights_;  // owns the mapped file the float32 weights view
  std::unique_ptr<WavCapsModel> model_;
  std::unique_ptr<preprocess::BertWordPieceTokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<Expert> make_wavcaps_expert(const ExpertOptions& options) {
  return std::make_unique<WavCapsExpert>(options);
}

void register_wavcaps_expert() {
  register_expert("wavcaps",
                  "WavCaps HTSAT-BERT (audio, text; --size pt|ft_aud|ft_clo = WAVCAPS_PT|_FT_aud|_FT_clo; "
                  "--vocab vocab.txt; fp32/bf16)",
                  make_wavcaps_expert);
}

}  // namespace omnibind::experts
