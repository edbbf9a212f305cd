// LAION-CLAP audio preprocessing (training/data.py get_audio_features, as OmniBind's CLAP expert
// calls it through get_audio_embedding_from_filelist):
//   librosa.load(sr=48000) -> int16 round trip -> ...
//   CLAP_G (fusion):  mel = torchaudio MelSpectrogram(48000, n_fft 1024, hop 480, periodic Hann,
//                     reflect centre padding, power 2, HTK mel scale, unnormalised triangles,
//                     50..14000 Hz, 64 mels) -> AmplitudeToDB(top_db=None) = 10 log10(max(x, 1e-10)),
//                     transposed to [frames, 64];
//                     n <= 480000: repeatpad, mel_fusion = 4 copies of the mel, longer = false;
//                     n > 480000: mel of the whole waveform (T = n / 480 + 1 frames); T == 1001
//                     (480000 < n < 480480): 4 copies, longer = false; else [bilinear shrink of the
//                     whole mel to [1001, 64] (align_corners=False, no antialias), 3 chunks of 1001
//                     frames], longer = true. The waveform is cropped too (the fusion model ignores it).
//   CLAP_M (no fusion): the 480000-sample waveform (repeatpad or crop); its log-mel is computed in
//                     the model by torchlibrosa_logmel.h with the checkpoint's matrices.
// Every float op of the torchaudio/torchvision path is the same ATen call as the reference's
// (same libtorch 1.13), so results are bit-identical to the reference given the same waveform.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "omnibind/media/audio.h"
#include "omnibind/preprocess/audio_waveform.h"

namespace omnibind::preprocess {

// model_cfg['audio_cfg'] values the front end reads (HTSAT-tiny.json / HTSAT-base.json).
struct ClapAudioConfig {
  int sample_rate = 48000;
  int64_t clip_samples = 480000;  // max_len
  int64_t window_size = 1024;     // n_fft = win_length
  int64_t hop_size = 480;
  int64_t mel_bins = 64;
  double fmin = 50.0;
  double fmax = 14000.0;
  int64_t chunk_frames() const { return clip_samples / hop_size + 1; }  // 1001
};

// torchaudio.functional.melscale_fbanks(n_fft/2+1, fmin, fmax, mel_bins, sample_rate, norm=None,
// mel_scale='htk'): [n_fft/2 + 1, mel_bins] float32, built with the reference's float32 ops.
at::Tensor clap_htk_mel_filterbank(const ClapAudioConfig& cfg = {});

// get_mel: waveform [n] float32 -> log-mel [n / hop + 1, mel_bins] float32 (time, mel).
// InputError when n <= n_fft / 2 (reflect padding needs more samples).
at::Tensor clap_log_mel(const at::Tensor& waveform, const ClapAudioConfig& cfg = {});

// torchvision Resize([frames, mel_bins]) of a [T, mel_bins] mel on a tensor (bilinear,
// align_corners=False, antialias off as in torchvision < 0.17).
at::Tensor clap_shrink_mel(const at::Tensor& mel, int64_t frames);

// What the reference decided for one clip (its draws, or ours).
struct ClapDecisions {
  bool longer = false;                        // the model's `longer` flag (fusion semantics)
  int64_t total_frames = 0;                   // mel frames of the whole waveform (fusion, n > max_len)
  std::array<ClapChunkRange, 3> chunk_ranges{};
  std::array<int64_t, 3> chunk_starts{-1, -1, -1};  // fusion chunks used (-1: none)
  int64_t crop_start = -1;                    // waveform crop start (-1: not cropped)
  int64_t repeat = 0;                         // repeatpad: int(max_len / n) (0: not padded)
  int64_t zero_tail = 0;                      // repeatpad: zeros appended
};

struct ClapAudioInput {
  at::Tensor waveform;    // [clip_samples] float32: CLAP_M's model input (and the reference's `waveform`)
  at::Tensor mel_fusion;  // [4, chunk_frames, mel_bins] float32: CLAP_G's model input (undefined unless fusion)
  bool longer = false;
  ClapDecisions decisions;
};

// Intermediates for parity tests.
struct ClapAudioTrace {
  LibrosaLoadTrace load;
  std::vector<float> librosa_48k;   // librosa.load output (sample_rate)
  std::vector<int16_t> quantized;   // float32_to_int16 of it
  at::Tensor mel_whole;             // fusion, n > max_len: mel of the whole waveform [T, mel_bins]
};

// Everything from decoded audio: fusion = true for CLAP_G (mel_fusion computed), false for CLAP_M.
// `draws` replaces the reference's random draws (unset fields: the deterministic defaults in
// audio_waveform.h). InputError (naming `name`) for empty/non-finite audio or draws outside their
// ranges.
ClapAudioInput clap_audio_input(const media::Audio& audio, bool fusion, const std::string& name,
                                const ClapAudioConfig& cfg = {}, const ClapDraws& draws = {},
                                ClapAudioTrace* trace = nullptr);

// The same from an already loaded librosa waveform at cfg.sample_rate (before quantisation).
ClapAudioInput clap_audio_input_from_waveform(const std::vector<float>& librosa_wave, bool fusion,
                                              const std::string& name, const ClapAudioConfig& cfg = {},
                                              const ClapDraws& draws = {}, ClapAudioTrace* trace = nullptr);

}  // namespace omnibind::preprocess
