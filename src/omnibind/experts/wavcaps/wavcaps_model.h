// WavCaps' ASE model (omni_model/wavcaps/models/ase_model.py) in eval mode: the torchlibrosa front
// end with the checkpoint's STFT/mel matrices, the HTSAT tower, BERT without pooler, the two
// projection MLPs. Members mirror the checkpoint keys (`cp['model']`, no prefix):
//   audio_encoder.audio_enc.audio_feats_extractor.*  front_end
//   audio_encoder.audio_enc.*                        audio (HTSAT)
//   text_encoder.text_encoder.*                      text (BertModel, add_pooling_layer=False)
//   audio_proj.{0,2}.*, text_proj.{0,2}.*            projections
//   temp                                             (training loss only; checked present, unused)
// Shapes: B items, N = clip_samples, T = frames (1001), F = n_mels (64), E = embed_size.
#pragma once
#include <ATen/core/Tensor.h>

#include "omnibind/experts/bert/bert_model.h"
#include "omnibind/experts/htsat/htsat_model.h"
#include "omnibind/experts/htsat/projection_mlp.h"
#include "omnibind/experts/wavcaps/wavcaps_config.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"

namespace omnibind::experts {
class WeightSource;
}  // namespace omnibind::experts

namespace omnibind::experts::wavcaps {

struct WavCapsModel {
  WavCapsConfig config;
  preprocess::TorchlibrosaWeights front_end;  // conv_real/conv_imag [n_fft/2+1, 1, n_fft], melW [n_fft/2+1, F]
  htsat::HtsatModel audio;
  bert::BertModel text;
  htsat::ProjectionMlp audio_proj, text_proj;

  // Every tensor from `w` (float32 source positioned at the state dict's root; "module." allowed
  // as its prefix), then strict key coverage as the reference's load_state_dict(strict=True):
  // a missing tensor or one the model has no place for is an InputError naming it. The unused
  // classifier (tscam_conv, head) and `temp` must be present but are not computed.
  // dtype: kFloat or kBFloat16 (matmul weights; front end, norms, convs stay float32).
  static WavCapsModel load(const WeightSource& w, const WavCapsConfig& config, at::ScalarType dtype);

  // torchlibrosa log-mel: waveform [B, N] or [N] float32 -> [B, T, F] or [T, F].
  at::Tensor logmel(const at::Tensor& waveform) const;
  // ASE.encode_audio + OmniBind's second F.normalize: log-mel [B, T, F] -> unit [B, E] float32.
  at::Tensor audio_embed(const at::Tensor& logmel, htsat::HtsatStages* stages = nullptr) const;
  // ASE.encode_text on one tokenised batch (ids, mask [B, L] int64) + the second normalisation:
  // -> unit [B, E]. `cls` (optional) receives the [CLS] hidden states [B, H].
  at::Tensor text_embed(const at::Tensor& ids, const at::Tensor& mask, at::Tensor* cls = nullptr) const;
};

}  // namespace omnibind::experts::wavcaps
