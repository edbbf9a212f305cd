#include "omnibind/experts/zoo/zoo_inputs.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/kaldi_fbank.h"
#include "omnibind/preprocess/point_grouping.h"
#include "omnibind/preprocess/sinc_resample.h"

namespace omnibind::experts::zoo {
namespace {

constexpr int kSampleRate = 16000;
constexpr int64_t kFrameSamples = 400;   // one 25 ms Kaldi frame at 16 kHz
constexpr uint64_t kPointSubsampleSeed = 0;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

at::Tensor finish_image(at::Tensor chw, const ZooImageConfig& c) {  // float [C, H, W] in [0, 1]
  if (c.channels_in == 1 && chw.size(0) == 3) chw = chw.mean(0, true);
  if (chw.size(1) != c.size || chw.size(2) != c.size) {
    const bool shrink = chw.size(1) > c.size || chw.size(2) > c.size;
    at::Tensor x = chw.unsqueeze(0);
    x = shrink ? at::_upsample_bilinear2d_aa(x, {c.size, c.size}, false)
               : at::upsample_bilinear2d(x, {c.size, c.size}, false);
    chw = x.squeeze(0);
  }
  return ((chw - c.mean) / c.std).contiguous();
}

}  // namespace

at::Tensor zoo_audio_input(const media::Audio& audio, const ZooAudioConfig& c, const std::string& name) {
  require(audio.frames() > 0 && audio.sample_rate > 0, name + ": empty audio");
  std::vector<float> mono(audio.frames(), 0.0f);
  for (auto& ch : audio.channels)
    for (size_t i = 0; i < mono.size(); ++i) mono[i] += ch[i] / static_cast<float>(audio.channels.size());
  if (audio.sample_rate != kSampleRate) mono = preprocess::resample_sinc(mono, audio.sample_rate, kSampleRate);
  if (static_cast<int64_t>(mono.size()) < kFrameSamples) mono.resize(kFrameSamples, 0.0f);
  at::Tensor fb = preprocess::kaldi_fbank_16k_128(mono.data(), static_cast<int64_t>(mono.size()));  // [T, 128]
  const int64_t T = fb.size(0);
  at::Tensor mel = fb.view({T, c.mel_bins, 128 / c.mel_bins}).mean(-1).t().unsqueeze(0);  // [1, M, T]
  mel = T >= c.frames ? at::adaptive_avg_pool1d(mel, {c.frames}) : at::upsample_linear1d(mel, {c.frames}, false);
  at::Tensor x = mel.squeeze(0).t();  // [frames, M]
  at::Tensor mean = x.mean();
  at::Tensor sd = x.std(/*unbiased=*/false);
  x = (x - mean) / (sd + 1e-5);
  return x.unsqueeze(0).contiguous();
}

at::Tensor zoo_image_input(const media::Image& image, const ZooImageConfig& c, const std::string& name) {
  require(image.width > 0 && image.height > 0 &&
              image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
          name + ": empty or inconsistent image");
  at::Tensor hwc = at::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, at::kByte);
  at::Tensor chw = hwc.permute({2, 0, 1}).to(at::kFloat) / 255.0;
  return finish_image(chw, c);
}

at::Tensor zoo_grey_image_input(const uint8_t* pixels, int64_t height, int64_t width, const ZooImageConfig& c) {
  at::Tensor hw = at::from_blob(const_cast<uint8_t*>(pixels), {1, height, width}, at::kByte).to(at::kFloat) / 255.0;
  if (c.channels_in == 3) hw = hw.expand({3, height, width});
  return finish_image(hw.contiguous(), c);
}

at::Tensor zoo_point_input(const media::PointCloud& cloud, const ZooPointConfig& c, const std::string& name) {
  media::validate_point_cloud(cloud, name);
  const int64_t n = cloud.size();
  std::vector<int64_t> keep = preprocess::subsample_indices(n, c.points, kPointSubsampleSeed);
  at::Tensor out = at::empty({c.points, 3}, at::kFloat);
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < c.points; ++i) {
    const int64_t src = keep[static_cast<size_t>(i) % keep.size()];
    for (int k = 0; k < 3; ++k) o[i * 3 + k] = cloud.xyz[src * 3 + k];
  }
  out = out - out.mean(0, true);
  const float radius = out.norm(2, 1).max().item<float>();
  if (radius > 0.0f && std::isfinite(radius)) out = out / radius;
  return out.contiguous();
}

std::vector<int64_t> zoo_text_features(const std::string& text, int64_t buckets) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch >= 0x80) {
      cur += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    } else if (!cur.empty()) {
      words.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(cur);
  std::vector<std::string> feats;
  for (auto& w : words) feats.push_back("w|" + w);
  for (size_t i = 1; i < words.size(); ++i) feats.push_back("b|" + words[i - 1] + " " + words[i]);
  for (auto& w : words) {
    const std::string padded = "<" + w + ">";
    for (size_t i = 0; i + 3 <= padded.size(); ++i) feats.push_back("c|" + padded.substr(i, 3));
  }
  std::vector<int64_t> ids;
  ids.reserve(feats.size());
  for (auto& f : feats) ids.push_back(static_cast<int64_t>(fnv1a(f) % static_cast<uint64_t>(buckets)) + 1);
  return ids;
}

at::Tensor zoo_text_input(const std::string& text, const ZooTextConfig& c) {
  std::vector<int64_t> ids = zoo_text_features(text, c.buckets);
  at::Tensor out = at::zeros({c.max_tokens}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < c.max_tokens && i < static_cast<int64_t>(ids.size()); ++i) o[i] = ids[i];
  return out;
}

}  // namespace omnibind::experts::zoo
