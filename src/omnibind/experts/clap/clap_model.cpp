#include "omnibind/experts/clap/clap_model.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::clap {

ClapModel ClapModel::load(const WeightSource& w, const ClapConfig& c, at::ScalarType dtype) {
  require(dtype == at::kFloat || dtype == at::kBFloat16, "clap precision must be fp32 or bf16");
  c.htsat.validate("CLAP config");
  ClapModel m;
  m.config = c;
  const int64_t bins = c.audio.window_size / 2 + 1;
  std::vector<std::string> ignored = {"audio_transform.", "text_transform.", "logit_scale_a", "logit_scale_t"};
  std::vector<std::string> present = {"logit_scale_a", "logit_scale_t"};
  for (const char* t : {"audio_transform.sequential.", "text_transform.sequential."})
    for (const char* n : {"0.weight", "0.bias", "3.weight", "3.bias"}) present.push_back(std::string(t) + n);
  for (const char* n : {"tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias"})
    present.push_back(std::string("audio_branch.") + n);
  for (const auto& p : htsat::HtsatModel::unused_key_prefixes()) ignored.push_back("audio_branch." + p);
  const std::string fe = "audio_branch.";
  if (c.fusion()) {
    // CLAP_G computes its mel in preprocessing (torchaudio HTK): the in-model torchlibrosa
    // extractor is in the checkpoint but never runs.
    for (const char* n : {"spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
                          "logmel_extractor.melW"})
      present.push_back(fe + n);
    ignored.push_back(fe + "spectrogram_extractor.");
    ignored.push_back(fe + "logmel_extractor.");
  } else {
    preprocess::TorchlibrosaWeights f;
    f.conv_real = w.get(fe + "spectrogram_extractor.stft.conv_real.weight", {bins, 1, c.audio.window_size});
    f.conv_imag = w.get(fe + "spectrogram_extractor.stft.conv_imag.weight", {bins, 1, c.audio.window_size});
    f.melW = w.get(fe + "logmel_extractor.melW", {bins, c.audio.mel_bins});
    m.front_end = preprocess::checked_torchlibrosa_weights(f, w.family() + " checkpoint front end");
  }
  m.audio = htsat::HtsatModel::load(w.sub("audio_branch."), c.htsat, dtype);
  m.text = bert::BertModel::load(c.text, w.sub("text_branch."), dtype);
  const int64_t J = c.embed_dim();
  m.audio_projection = htsat::ProjectionMlp::load(w, "audio_projection.", c.htsat.num_features(), J, J, dtype);
  m.text_projection = htsat::ProjectionMlp::load(w, "text_projection.", c.text.hidden, J, J, dtype);
  audio_text::require_present(w, present);
  w.require_all_used(audio_text::with_ddp_prefix(ignored));
  return m;
}

at::Tensor ClapModel::logmel(const at::Tensor& waveform) const {
  require(!config.fusion(), "clap: the fusion model computes its mel in preprocessing, not in the model");
  return preprocess::torchlibrosa_logmel(waveform.to(at::kFloat).contiguous(), front_end, config.audio.hop_size);
}

at::Tensor ClapModel::audio_embed(const at::Tensor& mel, const std::vector<bool>& longer,
                                  htsat::HtsatStages* stages) const {
  at::Tensor e = audio_projection.forward(audio.forward(mel.to(at::kFloat), longer, stages));
  return htsat::l2_normalize(htsat::l2_normalize(e));
}

at::Tensor ClapModel::text_embed(const at::Tensor& ids, const at::Tensor& mask) const {
  // CLAP pads every text to 77 tokens. Columns after the batch's last attended token change nothing
  // but rounding (their keys are masked with float32 min, positions come from the ids, the pooler
  // reads token 0), so cut them: most captions are far shorter than 77 (bench: 1.9-2.6x less CPU,
  // embeddings within 1.5e-7).
  const int64_t full = ids.size(1);
  int64_t used = 0;
  if (full > 0) {
    at::Tensor attended = mask.ne(0).any(0);                       // [L]
    at::Tensor idx = at::arange(full, at::kLong).masked_select(attended);
    used = idx.numel() > 0 ? idx.max().item<int64_t>() + 1 : 1;
  }
  const at::Tensor ids_used = used < full ? ids.narrow(1, 0, used) : ids;
  const at::Tensor mask_used = used < full ? mask.narrow(1, 0, used) : mask;
  at::Tensor pooled = text.pool(text.forward(ids_used, mask_used));
  return htsat::l2_normalize(htsat::l2_normalize(text_projection.forward(pooled)));
}

}  // namespace omnibind::experts::clap
