#include "omnibind/experts/wavcaps/wavcaps_model.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"
#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::wavcaps {

namespace {
const char* kTower = "audio_encoder.audio_enc.";
const char* kFrontEnd = "audio_encoder.audio_enc.audio_feats_extractor.";
const char* kText = "text_encoder.text_encoder.";
}  // namespace

WavCapsModel WavCapsModel::load(const WeightSource& w, const WavCapsConfig& c, at::ScalarType dtype) {
  require(dtype == at::kFloat || dtype == at::kBFloat16, "wavcaps precision must be fp32 or bf16");
  c.htsat.validate("WavCaps config");
  WavCapsModel m;
  m.config = c;
  const int64_t bins = c.n_fft / 2 + 1;
  preprocess::TorchlibrosaWeights fe;
  fe.conv_real = w.get(std::string(kFrontEnd) + "mel_trans.stft.conv_real.weight", {bins, 1, c.n_fft});
  fe.conv_imag = w.get(std::string(kFrontEnd) + "mel_trans.stft.conv_imag.weight", {bins, 1, c.n_fft});
  fe.melW = w.get(std::string(kFrontEnd) + "log_trans.melW", {bins, c.htsat.mel_bins});
  m.front_end = preprocess::checked_torchlibrosa_weights(fe, w.family() + " checkpoint front end");
  m.audio = htsat::HtsatModel::load(w.sub(kTower), c.htsat, dtype);
  m.text = bert::BertModel::load(c.text, w.sub(kText), dtype);
  const int64_t E = c.embed_size();
  m.audio_proj = htsat::ProjectionMlp::load(w, "audio_proj.", c.htsat.num_features(), E, E, dtype);
  m.text_proj = htsat::ProjectionMlp::load(w, "text_proj.", c.text.hidden, E, E, dtype);

  // Strict coverage: what the model does not compute must still be there (the reference's strict
  // load_state_dict would refuse the file otherwise) ...
  std::vector<std::string> ignored = {"temp"};
  std::vector<std::string> present = {"temp"};
  for (const auto& p : htsat::HtsatModel::unused_key_prefixes()) ignored.push_back(std::string(kTower) + p);
  for (const char* n : {"tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias"})
    present.push_back(std::string(kTower) + n);
  audio_text::require_present(w, present);
  // ... and nothing else may be in it.
  w.require_all_used(audio_text::with_ddp_prefix(ignored));
  return m;
}

at::Tensor WavCapsModel::logmel(const at::Tensor& waveform) const {
  return preprocess::torchlibrosa_logmel(waveform.to(at::kFloat).contiguous(), front_end, config.hop_length);
}

at::Tensor WavCapsModel::audio_embed(const at::Tensor& mel, htsat::HtsatStages* stages) const {
  at::Tensor x = mel.dim() == 3 ? mel.unsqueeze(1) : mel;  // [B, 1, T, F]
  at::Tensor e = audio_proj.forward(audio.forward(x.to(at::kFloat), {}, stages));
  return htsat::l2_normalize(htsat::l2_normalize(e));  // encode_audio, then OmniBind's emb_audios
}

at::Tensor WavCapsModel::text_embed(const at::Tensor& ids, const at::Tensor& mask, at::Tensor* cls) const {
  at::Tensor h = text.forward(ids, mask).select(1, 0);  // last hidden state at [CLS]
  if (cls) *cls = h;
  return htsat::l2_normalize(htsat::l2_normalize(text_proj.forward(h)));
}

}  // namespace omnibind::experts::wavcaps
