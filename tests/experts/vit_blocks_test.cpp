// The shared ViT / CLIP-text blocks (experts/vit/) against independent ATen formulas: torch's own
// fused multi-head attention kernel, gelu variants, layer_norm, conv2d, plus each checkpoint layout
// (packed in_proj, fused qkv + q/v bias, separate q/k/v), pre/post-norm, layer scale, bf16 weights,
// the CLIP text tower's causal mask and first-argmax pooling, and the key errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "omnibind/common/error.h"
#include "omnibind/experts/vit/clip_text.h"
#include "omnibind/experts/vit/vit_layers.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/raw_tensor.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace {

using namespace omnibind;
using namespace omnibind::experts;
namespace tio = omnibind::tensor_io;

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// A state dict built in memory; tensors stay alive in `keep`.
struct Dict {
  tio::StateDict sd{"test.pt"};
  std::vector<at::Tensor> keep;
  at::Generator gen = at::detail::createCPUGenerator(1234);
  at::Tensor add(const std::string& name, std::vector<int64_t> shape, double scale = 0.2, double offset = 0.0) {
    at::Tensor t = (at::randn(shape, gen) * scale + offset).contiguous();
    keep.push_back(t);
    sd.add(name, tio::from_tensor(t));
    return t;
  }
};

// Plain attention over [B, H, L, hd] with an optional additive mask.
at::Tensor ref_attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  at::Tensor s = at::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (mask.defined()) s = s + mask;
  at::Tensor o = at::matmul(at::softmax(s, -1), v);
  return o.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

TEST(VitBlocks, ActivationsMatchTheirFormulas) {
  at::Tensor x = at::linspace(-6, 6, 1001, at::kFloat);
  at::Tensor erf = x * 0.5 * (1 + at::erf(x / std::sqrt(2.0)));
  at::Tensor tanh = 0.5 * x * (1 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
  at::Tensor quick = x / (1 + at::exp(-1.702 * x));
  EXPECT_LT(max_abs(vit::activate(x, vit::Activation::GeluErf), erf), 1e-6);
  EXPECT_LT(max_abs(vit::activate(x, vit::Activation::GeluTanh), tanh), 1e-6);
  EXPECT_LT(max_abs(vit::activate(x, vit::Activation::QuickGelu), quick), 1e-6);
  EXPECT_GT(max_abs(vit::activate(x, vit::Activation::QuickGelu), erf), 1e-2);  // really different
  EXPECT_EQ(vit::parse_activation("quick_gelu"), vit::Activation::QuickGelu);
  EXPECT_EQ(vit::parse_activation("gelu_pytorch_tanh"), vit::Activation::GeluTanh);
  EXPECT_NE(testkit::input_error_of([] { vit::parse_activation("relu"); }), "");
}

TEST(VitBlocks, LinearMatrixAndLayerNorm) {
  Dict d;
  at::Tensor w = d.add("lin.weight", {6, 5}), b = d.add("lin.bias", {6});
  at::Tensor p = d.add("proj", {5, 7});
  at::Tensor g = d.add("ln.weight", {5}, 0.2, 1.0), beta = d.add("ln.bias", {5});
  WeightSource ws(d.sd, at::kFloat, "Test");
  vit::Linear lin, mat, nob;
  lin.load(ws, "lin", 5, 6);
  mat.load_matrix(ws, "proj", 5, 7);
  nob.load(ws, "lin", 5, 6, false);
  vit::LayerNorm ln;
  ln.load(ws, "ln", 5, 1e-5);
  at::Tensor x = at::randn({2, 3, 5}, d.gen);
  EXPECT_LT(max_abs(lin.forward(x), at::matmul(x, w.t()) + b), 1e-6);
  EXPECT_LT(max_abs(nob.forward(x), at::matmul(x, w.t())), 1e-6);
  EXPECT_LT(max_abs(mat.forward(x), at::matmul(x, p)), 1e-6);
  at::Tensor mu = x.mean(-1, true), var = (x - mu).pow(2).mean(-1, true);
  EXPECT_LT(max_abs(ln.forward(x), (x - mu) / at::sqrt(var + 1e-5) * g + beta), 1e-5);
  EXPECT_NO_THROW(ws.require_all_used());
  // Wrong shape and missing key are one-line InputErrors naming the tensor.
  vit::Linear bad;
  EXPECT_NE(testkit::input_error_of([&] { bad.load(ws, "lin", 6, 6); }).find("'lin.weight' has shape [6, 5]"),
            std::string::npos);
  EXPECT_NE(testkit::input_error_of([&] { bad.load(ws, "nothere", 5, 6); }).find("missing tensor 'nothere.weight'"),
            std::string::npos);
}

// Packed in_proj (open_clip / torch MHA) against torch's own fused attention kernel.
TEST(VitBlocks, PackedAttentionMatchesTorchMultiHeadAttention) {
  const int64_t D = 32, H = 4, B = 2, L = 9;
  Dict d;
  at::Tensor wi = d.add("a.in_proj_weight", {3 * D, D}), bi = d.add("a.in_proj_bias", {3 * D});
  at::Tensor wo = d.add("a.out_proj.weight", {D, D}), bo = d.add("a.out_proj.bias", {D});
  WeightSource ws(d.sd, at::kFloat, "Test");
  vit::AttentionSpec s;
  s.dim = D;
  s.heads = H;
  vit::Attention a;
  a.load(ws, "a", s);
  at::Tensor x = at::randn({B, L, D}, d.gen);
  at::Tensor want = std::get<0>(at::_native_multi_head_attention(x, x, x, D, H, wi, bi, wo, bo, {}, false));
  EXPECT_LT(max_abs(a.forward(x), want), 1e-5);

  // Causal mask: position i only sees 0..i, so changing the last token leaves earlier rows alone.
  at::Tensor m = vit::causal_mask(L);
  EXPECT_EQ(m[0][1].item<float>(), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(m[1][0].item<float>(), 0.0f);
  EXPECT_EQ(m[3][3].item<float>(), 0.0f);
  at::Tensor y1 = a.forward(x, m), x2 = x.clone();
  x2.select(1, L - 1).add_(1.0);
  at::Tensor y2 = a.forward(x2, m);
  EXPECT_LT(max_abs(y1.narrow(1, 0, L - 1), y2.narrow(1, 0, L - 1)), 1e-6);
  EXPECT_GT(max_abs(y1.select(1, L - 1), y2.select(1, L - 1)), 1e-3);
  // And equals the plain formula with the mask.
  at::Tensor qkv = (at::matmul(x, wi.t()) + bi).view({B, L, 3, H, D / H}).permute({2, 0, 3, 1, 4});
  at::Tensor ref = at::matmul(ref_attend(qkv[0], qkv[1], qkv[2], m), wo.t()) + bo;
  EXPECT_LT(max_abs(y1, ref), 1e-5);

  // Cross-attention (SigLIP MAP head): a single query over the tokens.
  at::Tensor probe = at::randn({B, 1, D}, d.gen);
  auto heads = [&](const at::Tensor& t, int64_t i) {
    return (at::matmul(t, wi.narrow(0, i * D, D).t()) + bi.narrow(0, i * D, D)).view({B, -1, H, D / H}).transpose(1, 2);
  };
  at::Tensor want_x = at::matmul(ref_attend(heads(probe, 0), heads(x, 1), heads(x, 2), at::Tensor()), wo.t()) + bo;
  EXPECT_LT(max_abs(a.forward_cross(probe, x), want_x), 1e-5);
  // A query identical to the tokens is plain self-attention.
  EXPECT_LT(max_abs(a.forward_cross(x, x), want), 1e-5);
}

// EVA: qkv.weight without bias + q_bias / v_bias -> bias cat(q_bias, 0, v_bias); proj.
TEST(VitBlocks, FusedQkvWithQVBias) {
  const int64_t D = 16, H = 2, B = 1, L = 5;
  Dict d;
  at::Tensor w = d.add("attn.qkv.weight", {3 * D, D});
  at::Tensor qb = d.add("attn.q_bias", {D}), vb = d.add("attn.v_bias", {D});
  at::Tensor wo = d.add("attn.proj.weight", {D, D}), bo = d.add("attn.proj.bias", {D});
  WeightSource ws(d.sd, at::kFloat, "Test");
  vit::AttentionSpec s;
  s.dim = D;
  s.heads = H;
  s.layout = vit::QkvLayout::FusedQV;
  s.out_name = "proj";
  vit::Attention a;
  a.load(ws, "attn", s);
  at::Tensor x = at::randn({B, L, D}, d.gen);
  at::Tensor bias = at::cat({qb, at::zeros({D}), vb});
  at::Tensor want = std::get<0>(at::_native_multi_head_attention(x, x, x, D, H, w, bias, wo, bo, {}, false));
  EXPECT_LT(max_abs(a.forward(x), want), 1e-5);
  EXPECT_NO_THROW(ws.require_all_used());
}

// SigLIP: separate q/k/v/out_proj, scale applied after q k^T (same maths).
TEST(VitBlocks, SeparateQkvScaleAfterMatmul) {
  const int64_t D = 24, H = 3, B = 2, L = 7;
  Dict d;
  at::Tensor wq = d.add("sa.q_proj.weight", {D, D}), bq = d.add("sa.q_proj.bias", {D});
  at::Tensor wk = d.add("sa.k_proj.weight", {D, D}), bk = d.add("sa.k_proj.bias", {D});
  at::Tensor wv = d.add("sa.v_proj.weight", {D, D}), bv = d.add("sa.v_proj.bias", {D});
  at::Tensor wo = d.add("sa.out_proj.weight", {D, D}), bo = d.add("sa.out_proj.bias", {D});
  WeightSource ws(d.sd, at::kFloat, "Test");
  vit::AttentionSpec s;
  s.dim = D;
  s.heads = H;
  s.layout = vit::QkvLayout::Separate;
  s.scale_after_matmul = true;
  vit::Attention a;
  a.load(ws, "sa", s);
  at::Tensor x = at::randn({B, L, D}, d.gen);
  at::Tensor want = std::get<0>(at::_native_multi_head_attention(
      x, x, x, D, H, at::cat({wq, wk, wv}), at::cat({bq, bk, bv}), wo, bo, {}, false));
  EXPECT_LT(max_abs(a.forward(x), want), 1e-5);
  EXPECT_NO_THROW(ws.require_all_used());
}

// Adds one block's tensors (given names) to d.
void add_block(Dict& d, const std::string& p, int64_t D, int64_t hidden, const std::string& n1, const std::string& n2,
               const std::string& fc1, const std::string& fc2) {
  d.add(p + "." + n1 + ".weight", {D}, 0.2, 1.0);
  d.add(p + "." + n1 + ".bias", {D}, 0.1);
  d.add(p + ".attn.in_proj_weight", {3 * D, D});
  d.add(p + ".attn.in_proj_bias", {3 * D});
  d.add(p + ".attn.out_proj.weight", {D, D});
  d.add(p + ".attn.out_proj.bias", {D});
  d.add(p + "." + n2 + ".weight", {D}, 0.2, 1.0);
  d.add(p + "." + n2 + ".bias", {D}, 0.1);
  d.add(p + ".mlp." + fc1 + ".weight", {hidden, D});
  d.add(p + ".mlp." + fc1 + ".bias", {hidden});
  d.add(p + ".mlp." + fc2 + ".weight", {D, hidden});
  d.add(p + ".mlp." + fc2 + ".bias", {D});
}

at::Tensor T(const Dict& d, const std::string& name) { return tio::to_tensor(d.sd.at(name)); }

// Reference block written out from the tensors: pre- or post-norm, optional layer scale.
at::Tensor ref_block(const Dict& d, const std::string& p, const at::Tensor& x, int64_t H, double eps, bool post,
                     vit::Activation act, const std::string& n1, const std::string& n2, const std::string& fc1,
                     const std::string& fc2, const std::string& ls1 = "", const std::string& ls2 = "") {
  const int64_t D = x.size(2);
  auto ln = [&](const at::Tensor& t, const std::string& n) {
    return at::layer_norm(t, {D}, T(d, p + "." + n + ".weight"), T(d, p + "." + n + ".bias"), eps);
  };
  auto attn = [&](const at::Tensor& t) {
    return std::get<0>(at::_native_multi_head_attention(t, t, t, D, H, T(d, p + ".attn.in_proj_weight"),
                                                          T(d, p + ".attn.in_proj_bias"), T(d, p + ".attn.out_proj.weight"),
                                                          T(d, p + ".attn.out_proj.bias"), {}, false));
  };
  auto mlp = [&](const at::Tensor& t) {
    at::Tensor h = at::linear(t, T(d, p + ".mlp." + fc1 + ".weight"), T(d, p + ".mlp." + fc1 + ".bias"));
    return at::linear(vit::activate(h, act), T(d, p + ".mlp." + fc2 + ".weight"), T(d, p + ".mlp." + fc2 + ".bias"));
  };
  auto scale = [&](const at::Tensor& t, const std::string& n) { return n.empty() ? t : t * T(d, p + "." + n); };
  if (!post) {
    at::Tensor h = x + scale(attn(ln(x, n1)), ls1);
    return h + scale(mlp(ln(h, n2)), ls2);
  }
  at::Tensor h = x + scale(ln(attn(x), n1), ls1);
  return h + scale(ln(mlp(h), n2), ls2);
}

TEST(VitBlocks, PreNormOpenClipBlockAndLayerScale) {
  const int64_t D = 32, H = 4, Hd = 80;
  Dict d;
  add_block(d, "t.resblocks.0", D, Hd, "ln_1", "ln_2", "c_fc", "c_proj");
  add_block(d, "t.resblocks.1", D, Hd, "ln_1", "ln_2", "c_fc", "c_proj");
  d.add("t.resblocks.0.ls_1.gamma", {D}, 0.1, 0.5);
  d.add("t.resblocks.0.ls_2.gamma", {D}, 0.1, 0.5);
  d.add("t.resblocks.1.ls_1.gamma", {D}, 0.1, 0.5);
  d.add("t.resblocks.1.ls_2.gamma", {D}, 0.1, 0.5);
  WeightSource ws(d.sd, at::kFloat, "Test");
  auto spec = vit::BlockSpec::open_clip(D, H, Hd, vit::Activation::QuickGelu);
  vit::Transformer plain;
  plain.load(ws, "t.resblocks", 2, spec);
  EXPECT_NE(testkit::input_error_of([&] { ws.require_all_used(); }).find("ls_1.gamma"), std::string::npos);
  spec.layer_scale1_name = "ls_1.gamma";
  spec.layer_scale2_name = "ls_2.gamma";
  vit::Transformer scaled;
  scaled.load(ws, "t.resblocks", 2, spec);
  EXPECT_NO_THROW(ws.require_all_used());

  at::Tensor x = at::randn({2, 6, D}, d.gen);
  std::vector<at::Tensor> outs;
  at::Tensor y = plain.forward(x, at::Tensor(), &outs);
  ASSERT_EQ(outs.size(), 2u);
  at::Tensor r0 = ref_block(d, "t.resblocks.0", x, H, 1e-5, false, vit::Activation::QuickGelu, "ln_1", "ln_2", "c_fc", "c_proj");
  at::Tensor r1 = ref_block(d, "t.resblocks.1", r0, H, 1e-5, false, vit::Activation::QuickGelu, "ln_1", "ln_2", "c_fc", "c_proj");
  EXPECT_LT(max_abs(outs[0], r0), 2e-5);
  EXPECT_LT(max_abs(y, r1), 2e-5);
  at::Tensor s0 = ref_block(d, "t.resblocks.0", x, H, 1e-5, false, vit::Activation::QuickGelu, "ln_1", "ln_2", "c_fc",
                            "c_proj", "ls_1.gamma", "ls_2.gamma");
  EXPECT_LT(max_abs(scaled.blocks[0].forward(x), s0), 2e-5);
  EXPECT_GT(max_abs(scaled.blocks[0].forward(x), r0), 1e-3);
}

TEST(VitBlocks, PostNormEvaBlock) {
  const int64_t D = 16, H = 2, Hd = 40;
  Dict d;
  add_block(d, "b.0", D, Hd, "norm1", "norm2", "fc1", "fc2");
  WeightSource ws(d.sd, at::kFloat, "Test");
  auto spec = vit::BlockSpec::open_clip(D, H, Hd, vit::Activation::GeluErf, 1e-6);
  spec.norm = vit::NormPlacement::Post;
  spec.norm1_name = "norm1";
  spec.norm2_name = "norm2";
  spec.fc1_name = "fc1";
  spec.fc2_name = "fc2";
  vit::Block b;
  b.load(ws, "b.0", spec);
  at::Tensor x = at::randn({3, 5, D}, d.gen);
  at::Tensor want = ref_block(d, "b.0", x, H, 1e-6, true, vit::Activation::GeluErf, "norm1", "norm2", "fc1", "fc2");
  EXPECT_LT(max_abs(b.forward(x), want), 2e-5);
  at::Tensor pre = ref_block(d, "b.0", x, H, 1e-6, false, vit::Activation::GeluErf, "norm1", "norm2", "fc1", "fc2");
  EXPECT_GT(max_abs(b.forward(x), pre), 1e-2);
}

TEST(VitBlocks, PatchEmbedEqualsConv2d) {
  Dict d;
  at::Tensor w = d.add("conv.weight", {8, 3, 14, 14}), b = d.add("conv.bias", {8});
  WeightSource ws(d.sd, at::kFloat, "Test");
  vit::PatchEmbed pe, nob;
  pe.load(ws, "conv", 3, 8, 14, true);
  nob.load(ws, "conv", 3, 8, 14, false);
  // 47 x 33: 3 x 2 whole patches, the trailing pixels ignored like a valid stride-14 conv.
  at::Tensor px = at::randn({2, 3, 47, 33}, d.gen);
  at::Tensor conv = at::conv2d(px, w, b, {14, 14}).flatten(2).transpose(1, 2);  // [B, 6, 8]
  EXPECT_EQ(pe.forward(px).sizes(), conv.sizes());
  // Same sums in another order: float32 rounding relative to the output's scale.
  const double tol = 1e-5 * conv.abs().max().item<double>();
  EXPECT_LT(max_abs(pe.forward(px), conv), tol);
  at::Tensor conv_nb = at::conv2d(px, w, {}, {14, 14}).flatten(2).transpose(1, 2);
  EXPECT_LT(max_abs(nob.forward(px), conv_nb), tol);
}

TEST(VitBlocks, Bf16WeightsStayCloseAndStay16Bit) {
  const int64_t D = 64, H = 4, Hd = 256;
  Dict d;
  add_block(d, "r.0", D, Hd, "ln_1", "ln_2", "c_fc", "c_proj");
  WeightSource w32(d.sd, at::kFloat, "Test"), w16(d.sd, at::kBFloat16, "Test");
  auto spec = vit::BlockSpec::open_clip(D, H, Hd, vit::Activation::QuickGelu);
  vit::Block b32, b16;
  b32.load(w32, "r.0", spec);
  b16.load(w16, "r.0", spec);
  EXPECT_EQ(b16.attn.qkv.weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b16.mlp.fc1.weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b16.norm1.weight.scalar_type(), at::kFloat);
  at::Tensor x = at::randn({2, 10, D}, d.gen);
  at::Tensor y32 = b32.forward(x), y16 = b16.forward(x);
  EXPECT_EQ(y16.scalar_type(), at::kFloat);
  at::Tensor a = y32.flatten(), c = y16.flatten();
  EXPECT_GT((a.dot(c) / (a.norm() * c.norm())).item<double>(), 0.999);
}

TEST(VitBlocks, FirstArgmax) {
  at::Tensor ids = at::tensor({49406, 320, 49407, 500, 49407, 0, 49406, 49407, 0, 0, 0, 0}, at::kLong).view({2, 6});
  at::Tensor idx = vit::first_argmax(ids);
  EXPECT_EQ(idx[0].item<int64_t>(), 2);  // the first of two 49407s
  EXPECT_EQ(idx[1].item<int64_t>(), 1);
  at::Tensor z = at::zeros({1, 4}, at::kLong);
  EXPECT_EQ(vit::first_argmax(z)[0].item<int64_t>(), 0);
}

// The CLIP text tower = embeddings + causal pre-LN blocks + ln_final + first-argmax row + projection,
// written out from the tensors, for both key layouts (top level and under "text.").
TEST(VitBlocks, ClipTextTowerMatchesItsDefinition) {
  const int64_t V = 50, C = 8, W = 16, H = 2, E = 12;
  for (const std::string prefix : {"", "text."}) {
    Dict d;
    d.add(prefix + "positional_embedding", {C, W}, 0.5);
    d.add(prefix + "text_projection", {W, E});
    d.add(prefix + "token_embedding.weight", {V, W}, 0.5);
    add_block(d, prefix + "transformer.resblocks.0", W, 4 * W, "ln_1", "ln_2", "c_fc", "c_proj");
    add_block(d, prefix + "transformer.resblocks.1", W, 4 * W, "ln_1", "ln_2", "c_fc", "c_proj");
    d.add(prefix + "ln_final.weight", {W}, 0.2, 1.0);
    d.add(prefix + "ln_final.bias", {W}, 0.1);
    d.add("logit_scale", {});
    WeightSource ws(d.sd, at::kFloat, "Test");
    vit::ClipTextConfig c;
    c.vocab_size = V;
    c.context_length = C;
    c.width = W;
    c.heads = H;
    c.layers = 2;
    c.embed_dim = E;
    c.act = vit::Activation::QuickGelu;
    auto tower = vit::ClipTextTower::load(ws.sub(prefix), c);
    EXPECT_NO_THROW(ws.require_all_used({"logit_scale"}));
    // Row 0: EOT (=49 here, the largest id) twice -> pools at the first; row 1: plain.
    at::Tensor ids = at::tensor({48, 3, 49, 7, 49, 0, 0, 0, 48, 5, 6, 49, 0, 0, 0, 0}, at::kLong).view({2, C});
    vit::ClipTextStages st;
    at::Tensor got = tower.forward(ids, &st);
    EXPECT_EQ(st.pool_index[0].item<int64_t>(), 2);
    EXPECT_EQ(st.pool_index[1].item<int64_t>(), 3);

    at::Tensor x = at::embedding(T(d, prefix + "token_embedding.weight"), ids) + T(d, prefix + "positional_embedding");
    at::Tensor mask = at::full({C, C}, -std::numeric_limits<float>::infinity()).triu(1);
    for (int i = 0; i < 2; ++i) {
      const std::string p = prefix + "transformer.resblocks." + std::to_string(i);
      const auto ln = [&](const at::Tensor& t, const std::string& n) {
        return at::layer_norm(t, {W}, T(d, p + "." + n + ".weight"), T(d, p + "." + n + ".bias"), 1e-5);
      };
      at::Tensor y = ln(x, "ln_1");
      at::Tensor qkv = at::linear(y, T(d, p + ".attn.in_proj_weight"), T(d, p + ".attn.in_proj_bias"))
                           .view({2, C, 3, H, W / H})
                           .permute({2, 0, 3, 1, 4});
      x = x + at::linear(ref_attend(qkv[0], qkv[1], qkv[2], mask), T(d, p + ".attn.out_proj.weight"),
                         T(d, p + ".attn.out_proj.bias"));
      at::Tensor h = at::linear(ln(x, "ln_2"), T(d, p + ".mlp.c_fc.weight"), T(d, p + ".mlp.c_fc.bias"));
      x = x + at::linear(h * at::sigmoid(1.702 * h), T(d, p + ".mlp.c_proj.weight"), T(d, p + ".mlp.c_proj.bias"));
    }
    x = at::layer_norm(x, {W}, T(d, prefix + "ln_final.weight"), T(d, prefix + "ln_final.bias"), 1e-5);
    at::Tensor pooled = at::stack({x[0][2], x[1][3]});
    EXPECT_LT(max_abs(got, at::matmul(pooled, T(d, prefix + "text_projection"))), 2e-5) << prefix;
  }
}

TEST(VitBlocks, RandomWeightsLoadWithoutAFile) {
  auto ws = WeightSource::random(at::kFloat, 3);
  vit::ClipTextConfig c;
  c.width = 16;
  c.heads = 2;
  c.layers = 1;
  c.embed_dim = 8;
  c.context_length = 77;
  auto tower = vit::ClipTextTower::load(ws, c);
  at::Tensor ids = at::zeros({1, 77}, at::kLong);
  ids[0][0] = 49406;
  ids[0][1] = 49407;
  EXPECT_EQ(tower.forward(ids).sizes(), (std::vector<int64_t>{1, 8}));
}

}  // namespace
