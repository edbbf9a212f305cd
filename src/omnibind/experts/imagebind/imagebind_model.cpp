#include "omnibind/experts/imagebind/imagebind_model.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::imagebind {

using Kind = WeightSource::Kind;

namespace {
const std::string kPre = "modality_preprocessors.";
const std::string kTrunk = "modality_trunks.";
const std::string kHead = "modality_heads.";
const std::string kPost = "modality_postprocessors.";

// LearnableLogitScaling: clip(exp(log_scale), max=100), evaluated in float32 like the reference.
float logit_scale(const at::Tensor& log_scale) {
  return at::exp(log_scale.to(at::kFloat)).clamp_max(100.0).item<float>();
}

// F.normalize(x, dim=-1): x / max(||x||, 1e-12).
at::Tensor l2_normalize(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-12); }

at::Tensor f32(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }

// Prepends the cls token and adds the positional embedding: [B, N, D] -> [B, 1+N, D].
at::Tensor add_cls_and_pos(const at::Tensor& patches, const at::Tensor& cls, const at::Tensor& pos) {
  const int64_t B = patches.size(0);
  return at::cat({cls.expand({B, 1, cls.size(2)}), patches}, 1) + pos;
}
}  // namespace

ImageBindModel ImageBindModel::load(const ImageBindConfig& c, const WeightSource& w, unsigned towers) {
  const bool V = towers & kVision, A = towers & kAudio, T = towers & kText;
  c.validate();
  ImageBindModel m;
  m.config = c;
  m.dtype = w.dtype();
  const auto [kt, kh, kw] = c.kernel_size;
  const int64_t Dv = c.vision.dim, Da = c.audio.dim, Dt = c.text.dim, ka = c.audio_kernel;

  // Preprocessors (state-dict order: vision, text, audio).
  // Embeddings and norms float32; matmul weights (stems, projections) by mixed_matmul.h's rule.
  if (V) m.vision.cls_token = f32(w.get(kPre + "vision.cls_token", {1, 1, Dv}, Kind::Embedding));
  if (V) m.vision.stem_weight = w.get_matmul(kPre + "vision.rgbt_stem.proj.1.weight", {Dv, 3, kt, kh, kw});
  if (V) m.vision.pos_embed = f32(w.get(kPre + "vision.pos_embedding_helper.pos_embed", {1, c.vision_tokens(), Dv}, Kind::Embedding));
  if (T) m.text.pos_embed = f32(w.get(kPre + "text.pos_embed", {1, c.context_length, Dt}, Kind::Embedding));
  if (T) m.text.token_embedding = w.get_matmul(kPre + "text.token_embedding.weight", {c.vocab_size, Dt}, Kind::Embedding);
  if (A) m.audio.cls_token = f32(w.get(kPre + "audio.cls_token", {1, 1, Da}, Kind::Embedding));
  if (A) m.audio.stem_weight = w.get_matmul(kPre + "audio.rgbt_stem.proj.weight", {Da, 1, ka, ka});
  if (A) m.audio.stem_norm.load(w, kPre + "audio.rgbt_stem.norm_layer", Da, 1e-5);
  if (A) m.audio.pos_embed = f32(w.get(kPre + "audio.pos_embedding_helper.pos_embed", {1, c.audio_tokens(), Da}, Kind::Embedding));
  // The checkpoint also stores text.mask; it is structural (causal), so we build it.
  m.text.causal_mask = at::full({c.context_length, c.context_length}, -std::numeric_limits<float>::infinity(),
                                at::TensorOptions().dtype(at::kFloat))
                           .triu_(1);

  // Trunks.
  if (V) m.vision.trunk.load(w, kTrunk + "vision", Dv, c.vision.blocks, c.vision.heads, /*pre_ln=*/true, /*bias_kv=*/false);
  if (T) m.text.trunk.load(w, kTrunk + "text", Dt, c.text.blocks, c.text.heads, false, false);
  if (A) m.audio.trunk.load(w, kTrunk + "audio", Da, c.audio.blocks, c.audio.heads, false, true);

  // Heads: LayerNorm(eps 1e-6) + Linear without bias.
  if (V) m.vision.head_norm.load(w, kHead + "vision.0", Dv, 1e-6);
  if (V) m.vision.head_proj.load(w, kHead + "vision.2", Dv, c.out_dim, false);
  if (T) m.text.head_norm.load(w, kHead + "text.proj.0", Dt, 1e-6);
  if (T) m.text.head_proj.load(w, kHead + "text.proj.1", Dt, c.out_dim, false);
  if (A) m.audio.head_norm.load(w, kHead + "audio.0", Da, 1e-6);
  if (A) m.audio.head_proj.load(w, kHead + "audio.2", Da, c.out_dim, false);

  // Postprocessors: text's scale is a parameter, audio's a buffer (learnable=False, init 20).
  if (T) m.text.logit_scale = logit_scale(w.get(kPost + "text.1.log_logit_scale", {}, Kind::Scalar));
  if (A) m.audio.logit_scale = logit_scale(w.get(kPost + "audio.1.log_logit_scale", {}, Kind::Scalar));
  return m;
}

at::Tensor ImageBindModel::vision_tokens(const at::Tensor& pixels) const {
  // PadIm2Video(repeat) + Conv3d with kernel == stride is a patch GEMM: each patch is the
  // (channel, frame, row, col) block in the weight's order.
  const auto [kt, kh, kw] = config.kernel_size;
  const int64_t B = pixels.size(0), T = config.video_frames, H = pixels.size(2) / kh, W = pixels.size(3) / kw;
  at::Tensor video = f32(pixels).unsqueeze(2).expand({B, 3, T, pixels.size(2), pixels.size(3)});
  at::Tensor patches = video.reshape({B, 3, T / kt, kt, H, kh, W, kw})
                           .permute({0, 2, 4, 6, 1, 3, 5, 7})
                           .reshape({B, (T / kt) * H * W, 3 * kt * kh * kw});
  at::Tensor x = mixed::linear(patches, vision.stem_weight.view({vision.stem_weight.size(0), -1}), {}, dtype);  // [B, N, D]
  return add_cls_and_pos(x, vision.cls_token, vision.pos_embed);
}

at::Tensor ImageBindModel::audio_tokens(const at::Tensor& melspec) const {
  // Conv2d(kernel k, stride s) as overlapping patches (unfold) times the flattened kernel.
  const int64_t k = config.audio_kernel, s = config.audio_stride, B = melspec.size(0);
  at::Tensor p = f32(melspec).unfold(2, k, s).unfold(3, k, s);  // [B, 1, Hp, Wp, k, k]
  const int64_t Hp = p.size(2), Wp = p.size(3);
  p = p.permute({0, 2, 3, 1, 4, 5}).reshape({B, Hp * Wp, k * k});
  at::Tensor x = mixed::linear(p, audio.stem_weight.view({audio.stem_weight.size(0), -1}), {}, dtype);  // [B, N, D]
  return add_cls_and_pos(audio.stem_norm.forward(x), audio.cls_token, audio.pos_embed);
}

at::Tensor ImageBindModel::text_tokens(const at::Tensor& ids) const {
  return f32(at::embedding(text.token_embedding, ids)) + text.pos_embed;
}

at::Tensor ImageBindModel::vision_head(const at::Tensor& x) const {
  // LayerNorm over all tokens then select cls == select then LayerNorm (per-token op).
  return head_proj_f32(vision.head_proj, vision.head_norm.forward(x.select(1, 0)));
}

at::Tensor ImageBindModel::audio_head(const at::Tensor& x) const {
  return head_proj_f32(audio.head_proj, audio.head_norm.forward(x.select(1, 0)));
}

at::Tensor ImageBindModel::text_head(const at::Tensor& x, const at::Tensor& ids) const {
  const int64_t B = x.size(0), L = x.size(1);
  at::Tensor eot = ids.argmax(-1);  // <|endoftext|> = 49407 is the largest id
  at::Tensor rows = at::arange(B, eot.options()) * L + eot;
  at::Tensor sel = x.reshape({B * L, x.size(2)}).index_select(0, rows);
  return head_proj_f32(text.head_proj, text.head_norm.forward(sel));
}

at::Tensor ImageBindModel::head_proj_f32(const Linear& proj, const at::Tensor& x) {
  return proj.forward(x).to(at::kFloat);
}

at::Tensor ImageBindModel::vision_forward(const at::Tensor& pixels) const {
  return vision_head(vision.trunk.forward(vision_tokens(pixels), {}));
}

at::Tensor ImageBindModel::audio_forward(const at::Tensor& melspec) const {
  return audio_head(audio.trunk.forward(audio_tokens(melspec), {}));
}

at::Tensor ImageBindModel::text_forward(const at::Tensor& ids) const {
  return text_head(text.trunk.forward(text_tokens(ids), text.causal_mask), ids);
}

at::Tensor ImageBindModel::vision_embed(const at::Tensor& pixels) const { return l2_normalize(vision_forward(pixels)); }

at::Tensor ImageBindModel::audio_embed(const at::Tensor& clips) const {
  const int64_t B = clips.size(0), S = clips.size(1);
  at::Tensor flat = clips.reshape({B * S, clips.size(2), clips.size(3), clips.size(4)});
  at::Tensor e = l2_normalize(audio_forward(flat)) * audio.logit_scale;
  return e.view({B, S, -1}).mean(1);
}

at::Tensor ImageBindModel::text_embed(const at::Tensor& ids) const {
  return l2_normalize(text_forward(ids)) * text.logit_scale;
}

}  // namespace omnibind::experts::imagebind
