// LAION-CLAP as OmniBind runs it (omni_model/laion_clap, CLAP_Module): the two released models
// and configs read from the clap_mini config.json format.
//   "fusion" -> CLAP_G: HTSAT-tiny + AFF-2D fusion, torchaudio HTK mel computed in preprocessing
//               (630k-fusion-best.pt / 630k-audioset-fusion-best.pt)
//   "base"   -> CLAP_M: HTSAT-base, torchlibrosa Slaney log-mel inside the model
//               (music_speech_audioset_epoch_15_esc_89.98.pt)
// Both: roberta-base text tower with pooler, joint width 512.
#pragma once
#include <cstdint>
#include <string>

#include "omnibind/experts/bert/bert_config.h"
#include "omnibind/experts/htsat/htsat_config.h"
#include "omnibind/preprocess/clap_mel.h"

namespace omnibind::experts::clap {

struct ClapConfig {
  std::string size = "fusion";        // "fusion" | "base"
  htsat::HtsatConfig htsat;           // clap-fusion / clap-base; htsat.proj_dim = joint_embed_shape (512)
  bert::BertConfig text;              // roberta-base (pooler)
  preprocess::ClapAudioConfig audio;  // model_cfg.audio_cfg: 48 kHz, 480000 samples, 1024/480, 64 mels, 50..14000 Hz
  int64_t text_max_length = 77;       // CLAP_Module.tokenizer: padding='max_length', max_length=77

  bool fusion() const { return htsat.fusion; }
  int64_t embed_dim() const { return htsat.proj_dim; }
  int64_t frames() const { return audio.chunk_frames(); }  // 1001
};

// "fusion" or "base"; InputError listing them otherwise.
ClapConfig clap_released_config(const std::string& size);

// A JSON config: the clap_mini config.json ("amodel", "htsat_overrides", "model_cfg" {audio_cfg,
// joint_embed_shape, enable_fusion, fusion_type}, "roberta_config") or a flat object {"htsat":
// {HtsatConfig fields}, "roberta": {transformers config.json fields}, "audio_cfg": {...}}.
// InputError naming the file.
ClapConfig clap_config_from_json_file(const std::string& path);

// "CLAP_G" for the fusion model, "CLAP_M" for the one without.
std::string clap_key(bool fusion);

}  // namespace omnibind::experts::clap
