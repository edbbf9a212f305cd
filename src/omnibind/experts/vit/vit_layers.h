// Shared transformer pieces of the image-text experts (open_clip / DFN, EVA02-CLIP, SigLIP) as
// plain structs: each holds its tensors and a forward over ATen ops. Tensor names come from the
// caller (prefix + the key names in the spec structs below, defaults = open_clip's names), so one
// Block serves every checkpoint layout.
//
// Layout is batch-first [B, L, D] throughout (open_clip and torch's MultiheadAttention run
// [L, B, D]; the maths is the same).
//
// Precision: the residual stream, LayerNorms and softmax are float32. Matmul weights (Linear,
// attention projections, patch embedding) are stored and multiplied by the one rule of
// experts/mixed_matmul.h for the WeightSource's dtype (the model's precision): bf16 GEMMs only on
// CPUs with native bf16, else float32 GEMMs over weights upcast per call (fp32 precision keeps a
// 16-bit file's weights as stored). Every forward takes and returns float32.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::vit {

// y = x W^T + b. weight [out, in] (possibly a transposed view of an x @ P matrix), bias [out] or
// undefined.
struct Linear {
  at::Tensor weight, bias;
  at::ScalarType compute = at::kFloat;  // the model's precision (mixed::linear's rule); set by load()
  // "<prefix>.weight" [out, in] and, when has_bias, "<prefix>.bias" [out].
  void load(const WeightSource& w, const std::string& prefix, int64_t in, int64_t out, bool has_bias = true);
  // A bare matrix used as x @ P (open_clip text_projection / visual.proj): tensor `name` [in, out].
  void load_matrix(const WeightSource& w, const std::string& name, int64_t in, int64_t out);
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  at::Tensor forward(const at::Tensor& x) const;  // float32 [..., in] -> float32 [..., out]
};

// LayerNorm over the last dim; weight/bias float32 [D]; eps per use (open_clip / EVA text 1e-5,
// EVA vision and SigLIP 1e-6). With `rms` set (load_rms) it is T5-style RMSNorm instead (EVA-CLIP-18B's
// RMSnorm): weight * (x * rsqrt(mean(x^2, -1) + eps)), no mean subtraction, no bias, float32.
struct LayerNorm {
  at::Tensor weight, bias;
  double eps = 1e-5;
  bool rms = false;
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, double eps);
  // RMSNorm: "<prefix>.weight" [D] only.
  void load_rms(const WeightSource& w, const std::string& prefix, int64_t dim, double eps);
  bool defined() const { return weight.defined(); }
  at::Tensor forward(const at::Tensor& x) const;
};

enum class Activation {
  GeluErf,    // nn.GELU() (EVA, open_clip default)
  GeluTanh,   // gelu_pytorch_tanh (SigLIP)
  QuickGelu,  // x * sigmoid(1.702 x) (OpenAI CLIP, DFN via quick_gelu: true)
};
at::Tensor activate(const at::Tensor& x, Activation a);
// "gelu" | "gelu_tanh" (also "gelu_pytorch_tanh") | "quick_gelu"; InputError otherwise.
Activation parse_activation(const std::string& name);

// fc1 (D -> H) -> activation -> fc2 (H -> D), both with bias.
struct Mlp {
  Linear fc1, fc2;
  Activation act = Activation::GeluErf;
  // "<prefix>.<fc1_name>", "<prefix>.<fc2_name>".
  void load(const WeightSource& w, const std::string& prefix, int64_t dim, int64_t hidden, Activation act,
            const std::string& fc1_name = "c_fc", const std::string& fc2_name = "c_proj");
  at::Tensor forward(const at::Tensor& x) const;
};

// How a checkpoint stores the q/k/v projections.
enum class QkvLayout {
  Packed,    // nn.MultiheadAttention: in_proj_weight [3D, D] (rows q | k | v), in_proj_bias [3D], out_proj
  FusedQV,   // EVA / timm: qkv.weight [3D, D] without bias, q_bias, v_bias [D] (bias = cat(q_bias, 0, v_bias)), proj
  Separate,  // SigLIP / HF: q_proj, k_proj, v_proj (each weight + bias), out_proj
  Fused,     // EVA-CLIP-18B (qkv_bias: false): qkv.weight [3D, D] and no bias of any kind, proj
};

struct AttentionSpec {
  int64_t dim = 0, heads = 1;
  QkvLayout layout = QkvLayout::Packed;
  // false: q * head_dim^-0.5 before q k^T (torch MHA, EVA); true: (q k^T) * head_dim^-0.5 (SigLIP).
  bool scale_after_matmul = false;
  // Key names under the attention prefix. Packed: "in_proj_weight" / "in_proj_bias" (fixed);
  // FusedQV: qkv_name ("qkv") + "q_bias" / "v_bias"; Separate: q/k/v_name.
  std::string qkv_name = "qkv", q_name = "q_proj", k_name = "k_proj", v_name = "v_proj";
  std::string out_name = "out_proj";  // EVA: "proj"
  bool k_bias = true;                 // Separate only: whether k_proj has a bias (SigLIP: yes)
  bool qv_bias = true;                // Separate only: whether q_proj / v_proj have biases (EVA-18B HF: no)
};

// Multi-head attention (eval, no dropout). q, k, v come out as [B, H, L, hd].
struct Attention {
  int64_t heads = 1;
  bool scale_after_matmul = false;
  Linear qkv;           // Packed / FusedQV: [3D, D] with bias [3D]
  Linear q, k, v;       // Separate
  Linear out;           // D -> D
  void load(const WeightSource& w, const std::string& prefix, const AttentionSpec& spec);
  // Self-attention: x [B, L, D]; mask: additive float [L, L] (0 / -inf) or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = at::Tensor()) const;
  // Cross-attention (SigLIP's pooling head: a learned probe attends to the tokens):
  // query [B, Lq, D], kv [B, Lk, D] -> [B, Lq, D]. Packed layout slices in_proj into q | k | v.
  at::Tensor forward_cross(const at::Tensor& query, const at::Tensor& kv) const;
  // softmax(q k^T * scale + mask) v for q [B, H, Lq, hd], k/v [B, H, Lk, hd] -> [B, Lq, H*hd]
  // (exposed for families that add something between projection and attention, e.g. RoPE).
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) const;
};

enum class NormPlacement {
  Pre,   // x + attn(norm1(x)); x + mlp(norm2(x))      (open_clip, SigLIP, EVA text)
  Post,  // x + norm1(attn(x)); x + norm2(mlp(x))      (EVA02-CLIP-E vision, postnorm: true)
};

// One residual block; defaults are open_clip's ResidualAttentionBlock key names.
struct BlockSpec {
  AttentionSpec attn;
  int64_t mlp_hidden = 0;
  Activation act = Activation::GeluErf;
  NormPlacement norm = NormPlacement::Pre;
  bool rms_norm = false;  // norm1/norm2 are RMSNorm (weight only) instead of LayerNorm (EVA-CLIP-18B)
  double eps = 1e-5;
  std::string norm1_name = "ln_1", norm2_name = "ln_2", attn_name = "attn", mlp_name = "mlp";
  std::string fc1_name = "c_fc", fc2_name = "c_proj";
  // Layer scale multiplied into each branch before the residual add ("" = none). open_clip
  // LayerScale: "ls_1.gamma" / "ls_2.gamma"; EVA/timm: "gamma_1" / "gamma_2". [D] each.
  std::string layer_scale1_name, layer_scale2_name;

  // open_clip ResidualAttentionBlock (ln_1, attn = nn.MultiheadAttention, ln_2, mlp.c_fc/c_proj).
  static BlockSpec open_clip(int64_t dim, int64_t heads, int64_t mlp_hidden, Activation act, double eps = 1e-5);
};

struct Block {
  NormPlacement placement = NormPlacement::Pre;
  LayerNorm norm1, norm2;  // LayerNorm or RMSNorm (BlockSpec::rms_norm)
  Attention attn;
  Mlp mlp;
  at::Tensor ls1, ls2;  // float32 [D] or undefined
  void load(const WeightSource& w, const std::string& prefix, const BlockSpec& spec);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = at::Tensor()) const;  // [B, L, D]
};

// A stack of blocks "<prefix>.0", "<prefix>.1", ... (open_clip: "transformer.resblocks",
// EVA: "visual.blocks", SigLIP: "vision_model.encoder.layers").
struct Transformer {
  std::vector<Block> blocks;
  void load(const WeightSource& w, const std::string& prefix, int64_t depth, const BlockSpec& spec);
  // block_out (optional) receives every block's output.
  at::Tensor forward(at::Tensor x, const at::Tensor& mask = at::Tensor(),
                     std::vector<at::Tensor>* block_out = nullptr) const;
};

// Conv2d(C, D, P, stride P) on [B, C, H, W] as one matmul over the patches (same maths). Pixels
// past the last whole patch are ignored, as a stride-P valid convolution does (SigLIP so400m:
// 384 / 14 = 27 patches, pixels 378..383 unseen). Tokens in row-major patch order.
struct PatchEmbed {
  int64_t patch = 0, in_chans = 3;
  Linear proj;  // weight [D, C*P*P] (a view of the conv weight [D, C, P, P]), bias optional
  // "<name>.weight" [D, C, P, P] and, when has_bias, "<name>.bias" [D].
  void load(const WeightSource& w, const std::string& name, int64_t in_chans, int64_t dim, int64_t patch, bool has_bias);
  at::Tensor forward(const at::Tensor& pixels) const;  // [B, C, H, W] -> [B, (H/P)*(W/P), D]
};

// Additive causal mask [L, L]: 0 on and below the diagonal, -inf above (open_clip build_attention_mask).
at::Tensor causal_mask(int64_t length);

// Index of the first maximum of each row of ids [B, L] (torch.argmax's documented tie rule).
at::Tensor first_argmax(const at::Tensor& ids);

}  // namespace omnibind::experts::vit
