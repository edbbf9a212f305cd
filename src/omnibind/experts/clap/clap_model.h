// LAION-CLAP's CLAP model (omni_model/laion_clap/clap_module/model.py) in eval mode, as OmniBind
// uses it: HTSAT audio branch (+ torchlibrosa front end for CLAP_M), RoBERTa text branch with
// pooler, the two projection MLPs. Members mirror the checkpoint keys (state_dict without the
// DDP "module." prefix):
//   audio_branch.spectrogram_extractor.*, audio_branch.logmel_extractor.*  front_end (base only;
//                                        present but unused in the fusion model)
//   audio_branch.*                       audio (HTSAT; tscam_conv/head present, not computed)
//   text_branch.*                        text (RobertaModel incl. pooler)
//   audio_projection.{0,2}.*, text_projection.{0,2}.*
//   audio_transform.*, text_transform.*, logit_scale_a, logit_scale_t  (training only; must be present)
// Shapes: B items, T = 1001 frames, F = 64 mels, J = joint width (512).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/experts/bert/bert_model.h"
#include "omnibind/experts/clap/clap_config.h"
#include "omnibind/experts/htsat/htsat_model.h"
#include "omnibind/experts/htsat/projection_mlp.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"

namespace omnibind::experts {
class WeightSource;
}  // namespace omnibind::experts

namespace omnibind::experts::clap {

struct ClapModel {
  ClapConfig config;
  preprocess::TorchlibrosaWeights front_end;  // CLAP_M only
  htsat::HtsatModel audio;
  bert::BertModel text;
  htsat::ProjectionMlp audio_projection, text_projection;

  // Every tensor from `w` (a float32 source positioned at the state dict's root: prefix "" or
  // "module."), then strict key coverage: a missing tensor or one the model has no place for is
  // an InputError naming it. dtype: kFloat or kBFloat16 (matmul weights).
  static ClapModel load(const WeightSource& w, const ClapConfig& config, at::ScalarType dtype);

  // CLAP_M's in-model torchlibrosa log-mel: waveform [B, N] or [N] -> [B, T, F] or [T, F].
  at::Tensor logmel(const at::Tensor& waveform) const;
  // HTSAT + audio_projection + F.normalize (get_audio_embedding) + OmniBind's second F.normalize.
  // mel [B, C, T, F] (C = 4 with fusion: global + 3 chunks, else 1); longer: per item (fusion).
  at::Tensor audio_embed(const at::Tensor& mel, const std::vector<bool>& longer = {},
                         htsat::HtsatStages* stages = nullptr) const;
  // RoBERTa pooler + text_projection + F.normalize twice: ids, mask [B, L] -> unit [B, J].
  at::Tensor text_embed(const at::Tensor& ids, const at::Tensor& mask) const;
};

}  // namespace omnibind::experts::clap
