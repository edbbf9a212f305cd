// Waveform stages of the WavCaps and LAION-CLAP audio experts (docs/reference/audio_frontends.md):
//  - librosa 0.10.1 `load(path, sr=target, mono=True)` over media::decode_audio_* (soundfile's
//    float32 read: int16 / 32768, float WAV as stored, never clipped), `to_mono` = numpy's float32
//    mean over channels, `resample(res_type='soxr_hq')` (audio_soxr_resample.h) unless the rates
//    already match, then `fix_length` to int(ceil(n * (target / sr))) with the ratio in double (can
//    be one sample longer than soxr's output: that sample is 0).
//  - WavCaps: zero-pad on the right or keep the FIRST clip_samples (320000 @ 32 kHz).
//  - CLAP: int16 round trip (clip to [-1, 1], * 32767 in float32, truncate toward zero,
//    / 32767.0), `repeatpad` to 480000, and for longer clips the reference's random draws (fusion
//    mel chunk starts, waveform crop start) replaced by a documented deterministic default or by
//    recorded draws (ClapDraws).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "omnibind/media/audio.h"

namespace omnibind::preprocess {

// ---------------------------------------------------------------- librosa.load --------------------

// librosa.to_mono: float32 mean over channels in numpy's order (channels summed in float32 from
// 0 in channel order, pairwise blocks of 8 from 8 channels on; then divided by the count in
// float32). One channel is returned as is.
std::vector<float> librosa_to_mono(const media::Audio& audio);

// librosa.resample's target length: int(ceil(n * (double(target_sr) / orig_sr))).
int64_t librosa_resample_length(int64_t n, int orig_sr, int target_sr);

struct LibrosaLoadTrace {
  std::vector<float> mono_native;  // after to_mono, at the file's rate
  bool resampled = false;          // false when the file already has the target rate
  int64_t soxr_samples = 0;        // what libsoxr returned (before fix_length); = n when not resampled
};

// librosa.load(..., sr=target_sr, mono=True) on decoded audio. InputError (naming `name`) when the
// audio has no samples or non-finite samples.
std::vector<float> librosa_load(const media::Audio& audio, int target_sr, const std::string& name,
                                LibrosaLoadTrace* trace = nullptr);

// Issue 13 lists silent clips among the bad inputs, while the references embed them (log-mel -100 dB
// everywhere). The loaders above accept them, as the references do; an expert that refuses them
// calls this on the loaded waveform: InputError "<name>: audio is silent (every sample is 0)".
void require_not_silent(const std::vector<float>& wave, const std::string& name);

// ---------------------------------------------------------------- WavCaps -------------------------

struct WavcapsAudioConfig {
  int sample_rate = 32000;        // inference.yaml audio_args.sr
  int64_t clip_samples = 320000;  // 10 s
};

// WavCaps.emb_audios: zero-pad on the right to clip_samples or keep the first clip_samples.
std::vector<float> wavcaps_fit_length(std::vector<float> wave, int64_t clip_samples);

// decode result -> the [clip_samples] float32 waveform WavCaps' HTSAT consumes.
std::vector<float> wavcaps_waveform(const media::Audio& audio, const std::string& name,
                                    const WavcapsAudioConfig& cfg = {}, LibrosaLoadTrace* trace = nullptr);

// ---------------------------------------------------------------- CLAP ----------------------------

// training/data.py float32_to_int16: clip to [-1, 1], x * 32767 in float32, truncate toward zero.
std::vector<int16_t> clap_float32_to_int16(const std::vector<float>& wave);
// int16_to_float32: (q / 32767.0) cast to float32 (equal to the float32 division for all 65536 q).
std::vector<float> clap_int16_to_float32(const std::vector<int16_t>& q);

// data_filling 'repeatpad' for n <= max_len: tile int(max_len / n) times, zero-pad to max_len.
std::vector<float> clap_repeatpad(const std::vector<float>& wave, int64_t max_len);

// One third of np.array_split(range(0, total_frames - chunk_frames + 1), 3): starts first ..
// first + count - 1. An empty second/third range becomes {0} as in the reference.
struct ClapChunkRange {
  int64_t first = 0;
  int64_t count = 0;
};
std::array<ClapChunkRange, 3> clap_fusion_chunk_ranges(int64_t total_frames, int64_t chunk_frames);

// The reference draws (np.random, unseeded) for a clip longer than max_len samples. Unset fields
// take the deterministic default: chunk start = the middle element of its range
// (first + (count - 1) / 2), crop start = (n - max_len) / 2 (a centred crop).
struct ClapDraws {
  std::optional<std::array<int64_t, 3>> chunk_starts;  // fusion: front, middle, back chunk starts (mel frames)
  std::optional<int64_t> crop_start;                   // waveform crop start (samples)
};
std::array<int64_t, 3> clap_default_chunk_starts(const std::array<ClapChunkRange, 3>& ranges);
int64_t clap_default_crop_start(int64_t n, int64_t max_len);

// Quantised waveform (after the int16 round trip) -> the max_len-sample model waveform: repeatpad
// when n <= max_len, else the crop [start, start + max_len) with start = draws.crop_start or the
// default. InputError when a given crop start is outside [0, n - max_len]. `crop_start_used`
// receives the start (-1 when not cropped).
std::vector<float> clap_fit_waveform(const std::vector<float>& wave, int64_t max_len, const ClapDraws& draws,
                                     int64_t* crop_start_used = nullptr);

}  // namespace omnibind::preprocess
