// WavCaps HTSAT-BERT (OmniBind's WAVCAPS_PT / WAVCAPS_FT_aud / WAVCAPS_FT_clo): the released
// configuration (omni_model/wavcaps settings/inference.yaml + the hard-coded AudioEncoder /
// TextEncoder sizes) and configs read from the wavcaps_mini config.json format, plus the three
// released checkpoints' size names.
#pragma once
#include <cstdint>
#include <string>

#include "omnibind/experts/bert/bert_config.h"
#include "omnibind/experts/htsat/htsat_config.h"

namespace omnibind::experts::wavcaps {

struct WavCapsConfig {
  std::string name = "HTSAT-BERT";
  htsat::HtsatConfig htsat;       // htsat_preset("wavcaps"); htsat.proj_dim = embed_size (1024)
  bert::BertConfig text;          // bert-base-uncased, no pooler
  int sample_rate = 32000;        // inference.yaml audio_args.sr
  int64_t clip_samples = 320000;  // OmniBind's emb_audios: 10 s, zero-padded or the first 10 s
  int64_t n_fft = 1024;           // audio_args.n_fft: shapes of the checkpoint's STFT matrices
  int64_t hop_length = 320;       // audio_args.hop_length (n_mels = htsat.mel_bins; fmin/fmax only
                                  // shaped the checkpoint's melW)
  int64_t text_max_length = 30;   // TextEncoder: tokenizer(max_length=30, padding='longest')
  int64_t text_batch = 8;         // OmniBind's emb_texts tokenises and encodes 8 texts at a time

  int64_t embed_size() const { return htsat.proj_dim; }
  int64_t frames() const { return clip_samples / hop_length + 1; }  // 1001
};

// The released model (all three checkpoints share it).
WavCapsConfig wavcaps_released_config();

// A JSON config: the wavcaps_mini config.json ("inference_yaml" {embed_size, audio_args {sr,
// hop_length, n_mels}}, "htsat_kwargs_effective", "bert_config_json") or a flat object
// {"htsat": {HtsatConfig fields}, "bert": {transformers config.json fields}, "embed_size",
// "sample_rate", "hop_length"}. Starts from the released config; InputError naming the file.
WavCapsConfig wavcaps_config_from_json_file(const std::string& path);

// The three released checkpoints, chosen with --size:
//   "pt"     -> WAVCAPS_PT      HTSAT-BERT-PT.pt (WavCaps pre-training)
//   "ft_aud" -> WAVCAPS_FT_aud  HTSAT-BERT-FT-AudioCaps.pt (fine-tuned on AudioCaps)
//   "ft_clo" -> WAVCAPS_FT_clo  HTSAT-BERT-FT-Clotho.pt (fine-tuned on Clotho)
// Also accepted: "ft-audiocaps"/"audiocaps", "ft-clotho"/"clotho". An empty size is taken from the
// weights file name (…AudioCaps… -> ft_aud, …Clotho… -> ft_clo, anything else -> pt).
// Returns the canonical size; InputError listing the names otherwise.
std::string wavcaps_size(const std::string& size, const std::string& weights_path);
// "WAVCAPS_PT", "WAVCAPS_FT_aud", "WAVCAPS_FT_clo" for a canonical size.
std::string wavcaps_key(const std::string& canonical_size);

}  // namespace omnibind::experts::wavcaps
