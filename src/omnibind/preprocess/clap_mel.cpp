// LAION-CLAP get_mel / get_audio_features: torchaudio's and torchvision's ATen calls, in order.
#include "omnibind/preprocess/clap_mel.h"

#include <ATen/ATen.h>

#include <cmath>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

double hz_to_mel_htk(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }  // torchaudio _hz_to_mel (python floats)

at::Tensor to_tensor(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

}  // namespace

at::Tensor clap_htk_mel_filterbank(const ClapAudioConfig& cfg) {
  const int64_t n_freqs = cfg.window_size / 2 + 1;
  // melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale='htk')
  const at::Tensor all_freqs = at::linspace(0, cfg.sample_rate / 2, n_freqs);  // float32 (default dtype)
  const at::Tensor m_pts = at::linspace(hz_to_mel_htk(cfg.fmin), hz_to_mel_htk(cfg.fmax), cfg.mel_bins + 2);
  // _mel_to_hz: 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
  const at::Tensor f_pts = at::mul(at::sub(at::pow(10.0, at::div(m_pts, 2595.0)), 1.0), 700.0);
  // _create_triangular_filterbank
  const at::Tensor f_diff = f_pts.slice(0, 1) - f_pts.slice(0, 0, -1);       // [n_filter + 1]
  const at::Tensor slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1);      // [n_freqs, n_filter + 2]
  const at::Tensor zero = at::zeros({1});
  const at::Tensor down = at::div(at::mul(slopes.slice(1, 0, -2), -1.0), f_diff.slice(0, 0, -1));
  const at::Tensor up = at::div(slopes.slice(1, 2), f_diff.slice(0, 1));
  return at::maximum(zero, at::minimum(down, up));  // [n_freqs, n_mels]
}

at::Tensor clap_log_mel(const at::Tensor& waveform, const ClapAudioConfig& cfg) {
  require(waveform.defined() && waveform.dim() == 1, "CLAP mel: expected a 1-D waveform");
  const int64_t n_fft = cfg.window_size;
  const int64_t pad = n_fft / 2;
  const int64_t n = waveform.size(0);
  require(n > pad, "CLAP mel: waveform of " + std::to_string(n) + " samples is too short for reflect padding of " +
                       std::to_string(pad));
  // torchaudio.functional.spectrogram: pack to [1, n]; torch.stft(center=True, pad_mode='reflect'):
  // F.pad of the [1, 1, n] view, then the non-centred stft with the periodic Hann window.
  const at::Tensor x = waveform.to(at::kFloat).reshape({-1, n});
  const at::Tensor padded = at::reflection_pad1d(x.view({1, 1, n}), {pad, pad}).view({1, n + 2 * pad});
  const at::Tensor window = at::hann_window(n_fft);  // periodic, float32
  const at::Tensor spec_c = at::stft(padded, n_fft, cfg.hop_size, n_fft, window, /*normalized=*/false,
                                     /*onesided=*/true, /*return_complex=*/true);  // [1, F, T]
  const at::Tensor spec = spec_c.reshape({spec_c.size(-2), spec_c.size(-1)}).abs().pow(2.0);  // [F, T]
  // MelScale: matmul(spec.transpose(-1, -2), fb).transpose(-1, -2) -> [n_mels, T]
  static thread_local std::pair<std::string, at::Tensor> fb_cache;
  const std::string key = std::to_string(cfg.sample_rate) + "/" + std::to_string(cfg.window_size) + "/" +
                          std::to_string(cfg.mel_bins) + "/" + std::to_string(cfg.fmin) + "/" + std::to_string(cfg.fmax);
  if (fb_cache.first != key || !fb_cache.second.defined()) fb_cache = {key, clap_htk_mel_filterbank(cfg)};
  const at::Tensor mel = at::matmul(spec.transpose(-1, -2), fb_cache.second).transpose(-1, -2);
  // AmplitudeToDB(stype='power', top_db=None): 10 * log10(clamp(x, min=1e-10)) - 10 * log10(1) (= 0).
  const at::Tensor db = 10.0 * at::log10(at::clamp_min(mel, 1e-10));
  return db.t();  // [T, n_mels] (the reference's mel.T view)
}

at::Tensor clap_shrink_mel(const at::Tensor& mel, int64_t frames) {
  require(mel.defined() && mel.dim() == 2, "CLAP mel shrink: expected a [frames, mels] mel");
  if (mel.size(0) == frames) return mel;  // torchvision returns the image untouched at the same size
  // torchvision Resize on mel[None]: unsqueeze to [1, 1, T, M], bilinear, align_corners=False, no antialias.
  const at::Tensor img = mel.unsqueeze(0).unsqueeze(0);
  return at::upsample_bilinear2d(img, {frames, mel.size(1)}, /*align_corners=*/false, c10::nullopt, c10::nullopt)
      .squeeze(0)
      .squeeze(0);
}

ClapAudioInput clap_audio_input_from_waveform(const std::vector<float>& librosa_wave, bool fusion,
                                              const std::string& name, const ClapAudioConfig& cfg,
                                              const ClapDraws& draws, ClapAudioTrace* trace) {
  require(!librosa_wave.empty(), name + ": audio has no samples (zero length)");
  const std::vector<int16_t> q = clap_float32_to_int16(librosa_wave);
  const std::vector<float> wave = clap_int16_to_float32(q);
  if (trace) {
    trace->librosa_48k = librosa_wave;
    trace->quantized = q;
  }
  const int64_t n = static_cast<int64_t>(wave.size());
  const int64_t max_len = cfg.clip_samples;
  ClapAudioInput out;
  ClapDecisions& d = out.decisions;
  if (n > max_len) {
    if (fusion) {
      const at::Tensor mel = clap_log_mel(to_tensor(wave), cfg);  // whole waveform
      if (trace) trace->mel_whole = mel.contiguous();
      const int64_t chunk = cfg.chunk_frames();
      d.total_frames = mel.size(0);
      if (d.total_frames == chunk) {
        // The reference's corner case (480000 < n < 480480): the whole mel, 4 times, longer = false.
        out.mel_fusion = at::stack({mel, mel, mel, mel}, 0);
        d.longer = false;
      } else {
        require(d.total_frames > chunk, name + ": CLAP mel has fewer frames than one chunk");
        d.chunk_ranges = clap_fusion_chunk_ranges(d.total_frames, chunk);
        d.chunk_starts = draws.chunk_starts.value_or(clap_default_chunk_starts(d.chunk_ranges));
        static const char* kPart[3] = {"front", "middle", "back"};
        for (int i = 0; i < 3; ++i) {
          const ClapChunkRange& r = d.chunk_ranges[i];
          require(d.chunk_starts[i] >= r.first && d.chunk_starts[i] < r.first + r.count,
                  name + ": CLAP " + kPart[i] + " chunk start " + std::to_string(d.chunk_starts[i]) +
                      " is outside its range [" + std::to_string(r.first) + ", " + std::to_string(r.first + r.count - 1) +
                      "] (" + std::to_string(d.total_frames) + " mel frames)");
        }
        const at::Tensor shrink = clap_shrink_mel(mel, chunk);
        out.mel_fusion = at::stack({shrink, mel.slice(0, d.chunk_starts[0], d.chunk_starts[0] + chunk),
                                    mel.slice(0, d.chunk_starts[1], d.chunk_starts[1] + chunk),
                                    mel.slice(0, d.chunk_starts[2], d.chunk_starts[2] + chunk)},
                                   0);
        d.longer = true;
      }
    } else {
      d.longer = true;  // data_truncating 'rand_trunc' marks every long clip (unused without fusion)
    }
    // "random crop to max_len (for compatibility)": drawn in both modes, after the chunk draws.
    out.waveform = to_tensor(clap_fit_waveform(wave, max_len, draws, &d.crop_start));
  } else {
    if (n < max_len) {
      d.repeat = max_len / n;
      d.zero_tail = max_len - d.repeat * n;
    }
    out.waveform = to_tensor(clap_repeatpad(wave, max_len));
    if (fusion) {
      const at::Tensor mel = clap_log_mel(out.waveform, cfg);
      out.mel_fusion = at::stack({mel, mel, mel, mel}, 0);
    }
    d.longer = false;
  }
  out.longer = d.longer;
  return out;
}

ClapAudioInput clap_audio_input(const media::Audio& audio, bool fusion, const std::string& name,
                                const ClapAudioConfig& cfg, const ClapDraws& draws, ClapAudioTrace* trace) {
  LibrosaLoadTrace load_trace;
  const std::vector<float> wave = librosa_load(audio, cfg.sample_rate, name, trace ? &load_trace : nullptr);
  ClapAudioInput in = clap_audio_input_from_waveform(wave, fusion, name, cfg, draws, trace);
  if (trace) trace->load = std::move(load_trace);
  return in;
}

}  // namespace omnibind::preprocess
