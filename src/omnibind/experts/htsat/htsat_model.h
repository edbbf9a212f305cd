// HTSAT, the Swin audio transformer of WavCaps (models/htsat.py) and LAION-CLAP
// (clap_module/htsat.py + feature_fusion.py AFF), as plain structs whose members mirror the
// checkpoint keys under the tower prefix ("audio_encoder.audio_enc." in WavCaps, "audio_branch."
// in CLAP after "module." stripping). The mel front ends (torchlibrosa / torchaudio) are not part
// of this model: forward takes the log-mel.
// Shapes: B clips, C input channels (1, or 4 with fusion: global + 3 local chunks), T = 1001 mel
// frames, F = 64 mel bins, S = spec_size 256, G = S / patch_stride = 64 tokens per side,
// E = embed_dim, D_i = E * 2^i (stage i), N = window^2 = 64 tokens per window, nW windows.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "omnibind/experts/htsat/htsat_config.h"

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::htsat {

struct Linear {     // nn.Linear: weight [out, in] (stored by experts/mixed_matmul.h's rule), bias [out] or undefined
  at::Tensor weight, bias;
  at::ScalarType compute = at::kFloat;  // the model's precision
};
struct Conv2d {     // nn.Conv2d: weight [out, in, kh, kw], bias [out]; always float32
  at::Tensor weight, bias;
};
struct LayerNorm {  // weight, bias [D], float32
  at::Tensor weight, bias;
};
struct BatchNorm {  // eval-mode BatchNorm2d: weight, bias, running_mean, running_var [C], float32
  at::Tensor weight, bias, running_mean, running_var;
};

// layers.i.blocks.j.attn: qkv [3D, D] (+bias), proj [D, D]; relative_position_bias_table
// [(2w-1)^2, heads] gathered by relative_position_index [N, N] into a [heads, N, N] bias.
struct WindowAttention {
  Linear qkv, proj;
  at::Tensor relative_position_bias_table;  // [(2w-1)^2, heads] float32
  at::Tensor relative_position_index;       // [N, N] int64 (the checkpoint's buffer, or built as Swin does)
};

// layers.i.blocks.j: pre-norm window attention (cyclic shift on odd blocks) and MLP (GELU erf).
struct SwinBlock {
  int64_t heads = 1, window = 8, shift = 0;  // effective window/shift (shift 0 when resolution <= window)
  LayerNorm norm1, norm2;
  WindowAttention attn;
  Linear mlp_fc1, mlp_fc2;                   // mlp.fc1 [4D, D], mlp.fc2 [D, 4D]
  at::Tensor attn_mask;                      // [nW, N, N] 0 / -100 (shifted blocks only; undefined otherwise)
  at::Tensor attn_bias;                      // [nW or 1, heads, N, N] = gathered bias (+ mask), built at load
  at::Tensor window_order, token_order;      // [R*R] int64: roll(-shift) + window_partition as one gather, and its inverse
};

// layers.i.downsample: cat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) -> norm(4D)
// -> reduction [2D, 4D] (no bias).
struct PatchMerging {
  LayerNorm norm;
  Linear reduction;
};

struct BasicLayer {
  int64_t dim = 0, resolution = 0;  // D_i, tokens per side at this stage
  std::vector<SwinBlock> blocks;
  bool has_downsample = false;      // every stage but the last
  PatchMerging downsample;
};

// patch_embed.fusion_model.local_att = [0] Conv 1x1 E->E/r [1] BN [2] ReLU [3] Conv 1x1 E/r->E [4] BN;
// patch_embed.fusion_model.global_att = [0] AdaptiveAvgPool2d(1) [1] Conv [2] BN [3] ReLU [4] Conv [5] BN.
struct AffBranch {
  Conv2d conv_a, conv_b;   // local_att.0 / .3, global_att.1 / .4
  BatchNorm bn_a, bn_b;    // local_att.1 / .4, global_att.2 / .5
  bool pool = false;       // global_att: average over the whole map first
};

// patch_embed: proj Conv2d(1, E, patch, stride) + norm LayerNorm(E); with aff_2d fusion also
// mel_conv2d Conv2d(1, E, (patch, 3 patch), stride (stride, 3 stride)) and the AFF branches.
struct PatchEmbed {
  Conv2d proj;
  LayerNorm norm;
  Conv2d mel_conv2d;                  // fusion only
  AffBranch local_att, global_att;    // fusion_model.* (fusion only)
};

// Intermediate results, for parity tests and debugging.
struct HtsatStages {
  at::Tensor bn0_out;               // [B, C, T, F] after bn0
  at::Tensor model_input;           // [B, C, S, S] after reshape_wav2img
  at::Tensor patch_embed_proj;      // [B, E, G, G] patch_embed.proj on channel 0
  at::Tensor mel_conv2d_out;        // [3 L, E, G, Wl] fusion: local chunks of the L longer items (else undefined)
  at::Tensor fusion_out;            // [L, E, G, G] fusion: AFF output of the longer items (else undefined)
  at::Tensor patch_embed;           // [B, G*G, E] after flatten + norm
  std::vector<at::Tensor> layer_out;  // stage i: [B, (G/2^(i+1))^2, D_(i+1)] (after PatchMerging), last: [B, n, D_last]
  at::Tensor final_norm;            // [B, n, num_features]
  at::Tensor embedding;             // [B, num_features]
};

struct HtsatModel {
  HtsatConfig config;
  at::ScalarType compute = at::kFloat;  // kFloat or kBFloat16: the precision (experts/mixed_matmul.h's rule)
  BatchNorm bn0;                        // [F]
  PatchEmbed patch_embed;
  std::vector<BasicLayer> layers;
  LayerNorm norm;                       // [num_features]

  // Loads every tensor the forward uses from `w`, which is already positioned at the tower's prefix
  // (w.sub("audio_encoder.audio_enc.") / w.sub("audio_branch.")). Norms, convs and bias tables are
  // kept in float32, Linear weights stored for `dtype` (kFloat or kBFloat16) by mixed_matmul.h's rule; pass a float32
  // WeightSource so that the float32 parts are not rounded. The stored relative_position_index and
  // attn_mask buffers are used when the checkpoint has them (the reference uses the loaded
  // buffers), else built as Swin builds them (random weights). InputError (via WeightSource) naming the key on a missing tensor or a shape mismatch.
  static HtsatModel load(const WeightSource& w, const HtsatConfig& config, at::ScalarType dtype = at::kFloat);

  // Key prefixes (relative to the tower prefix) of tensors the model does not read: the
  // tscam_conv/head classifier and the BatchNorm step counters (num_batches_tracked, a training
  // statistic; stored 0-d or [1] depending on the writer). Prepend the tower prefix and pass them,
  // together with the front end's keys if the front end does not load them, to
  // WeightSource::require_all_used.
  static std::vector<std::string> unused_key_prefixes() {
    return {"tscam_conv.", "head.", "bn0.num_batches_tracked",
            "patch_embed.fusion_model.local_att.1.num_batches_tracked",
            "patch_embed.fusion_model.local_att.4.num_batches_tracked",
            "patch_embed.fusion_model.global_att.2.num_batches_tracked",
            "patch_embed.fusion_model.global_att.5.num_batches_tracked"};
  }
  // The torchlibrosa front-end constants inside the tower (WavCaps:
  // audio_feats_extractor.mel_trans.stft.conv_{real,imag}.weight, audio_feats_extractor.log_trans.melW;
  // CLAP: spectrogram_extractor.stft.conv_{real,imag}.weight, logmel_extractor.melW), for a
  // front end to load or for `ignored` when it is not used (CLAP_G).
  static std::vector<std::string> front_end_key_prefixes() {
    return {"audio_feats_extractor.", "spectrogram_extractor.", "logmel_extractor."};
  }

  // mel [B, C, T, F] log-mel (C = config.in_channels(): 1, or 4 = global + 3 local chunks with
  // fusion; T <= S * freq_ratio, F <= S / freq_ratio) -> embedding [B, num_features] float32 (the
  // mean of the final tokens, before any projection). `longer` (fusion only; empty = all false):
  // per clip, whether the AFF path fuses its 3 local chunks. `stages` receives the intermediates.
  // InputError on a wrong shape.
  at::Tensor forward(const at::Tensor& mel, const std::vector<bool>& longer = {}, HtsatStages* stages = nullptr) const;
};

// The reference's reshape_wav2img: x [B, C, T, F] -> bicubic (A = -0.75, align_corners=True, as
// torch's upsample_bicubic2d) to [B, C, S*r, S/r] where needed, then fold the r time blocks into
// the frequency axis -> [B, C, S, S] (row 64k + f = mel bin f of time block k).
at::Tensor reshape_wav2img(const at::Tensor& x, const HtsatConfig& config);

}  // namespace omnibind::experts::htsat
