// The two-layer projection head both audio-text families put after their towers:
// nn.Sequential(Linear(in, hidden), ReLU, Linear(hidden, out)), keys "<prefix>0.*" and "<prefix>2.*".
//   WavCaps: audio_proj / text_proj (768 -> 1024 -> 1024); CLAP: audio_projection /
//   text_projection (768|1024 -> 512 -> 512). L2 normalisation is the caller's (F.normalize).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::htsat {

struct ProjectionMlp {
  at::Tensor weight_0, bias_0;  // "0.weight" [hidden, in], "0.bias" [hidden]
  at::Tensor weight_2, bias_2;  // "2.weight" [out, hidden], "2.bias" [out]
  at::ScalarType compute = at::kFloat;

  // `prefix` ends with a dot ("audio_proj.", "text_projection."). `dtype` (kFloat or kBFloat16) is
  // the precision: weights stored and multiplied by experts/mixed_matmul.h's rule, ReLU in fp32.
  static ProjectionMlp load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t hidden, int64_t out,
                            at::ScalarType dtype = at::kFloat);
  int64_t in_features() const { return weight_0.size(1); }
  int64_t out_features() const { return weight_2.size(0); }
  // x [..., in] (any float dtype) -> [..., out] float32, before normalisation.
  at::Tensor forward(const at::Tensor& x) const;
};

// F.normalize(x, dim=-1, eps=1e-12): x / max(||x||, 1e-12), float32.
at::Tensor l2_normalize(const at::Tensor& x);

}  // namespace omnibind::experts::htsat
