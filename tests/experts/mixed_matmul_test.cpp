// experts/mixed_matmul.h, the one matmul rule: the upcast path is bit-identical to a float32
// computation over the same (16-bit-rounded) weights; fp32 precision over a 16-bit file keeps the
// file's matmul weights mapped and gives exactly what converting the file to float32 first gives
// (EVA-CLIP, ViT blocks, BERT, HTSAT heads, Uni3D-style readers through WeightSource); and the native
// and upcast paths agree within bf16 tolerance when forced with OMNIBIND_BF16_MATMUL (each in a
// child process, since the choice is made once per process).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "omnibind/common/cpu_features.h"
#include "omnibind/experts/bert/bert_model.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_expert.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/htsat/projection_mlp.h"
#include "omnibind/experts/imagebind/imagebind_layers.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/vit/vit_layers.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/raw_tensor.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

extern char** environ;

namespace {

using namespace omnibind;
using namespace omnibind::experts;
namespace tio = omnibind::tensor_io;

at::Generator gen(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

const void* raw_ptr(const tio::RawTensor& r, size_t elem) {
  return static_cast<const void*>(r.data + r.storage_offset * static_cast<int64_t>(elem));
}

// ---------------------------------------------------------------- the rule on single ops

TEST(MixedMatmul, UpcastLinearIsTheFloat32LinearOverTheRoundedWeights) {
  auto g = gen(7);
  at::Tensor x = at::randn({3, 37, 96}, g);
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    at::Tensor w16 = (at::randn({80, 96}, g) * 0.05).to(dt), b16 = (at::randn({80}, g) * 0.01).to(dt);
    at::Tensor w32 = w16.to(at::kFloat), b32 = b16.to(at::kFloat);
    // fp32 precision: always the float32 GEMM, whatever the CPU.
    at::Tensor y = mixed::linear(x, w16, b16, at::kFloat);
    EXPECT_EQ(y.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(y, at::linear(x, w32, b32))) << at::toString(dt);
    EXPECT_TRUE(at::equal(mixed::linear(x, w16, {}, at::kFloat), at::linear(x, w32)));
    // A transposed view (open_clip's x @ proj) keeps its strides through the upcast.
    at::Tensor p16 = (at::randn({96, 80}, g) * 0.05).to(dt);
    EXPECT_TRUE(at::equal(mixed::linear(x, p16.t(), {}, at::kFloat), at::linear(x, p16.to(at::kFloat).t())));
    // bf16 precision without native bf16: the same float32 GEMM.
    if (!cpu_has_native_bf16())
      EXPECT_TRUE(at::equal(mixed::linear(x, w16, b16, at::kBFloat16), at::linear(x, w32, b32))) << at::toString(dt);
  }
  // float32 weights are float32 GEMMs in either precision.
  at::Tensor w = at::randn({8, 96}, g);
  EXPECT_TRUE(at::equal(mixed::linear(x, w, {}, at::kBFloat16), at::linear(x, w)));
}

TEST(MixedMatmul, AttentionMatmulsAreFloat32UnlessNative) {
  auto g = gen(8);
  at::Tensor q = at::randn({2, 4, 33, 16}, g), k = at::randn({2, 4, 33, 16}, g);
  EXPECT_TRUE(at::equal(mixed::matmul(q, k.transpose(-2, -1), at::kFloat), at::matmul(q, k.transpose(-2, -1))));
  EXPECT_FALSE(mixed::native_bf16(at::kFloat));
  EXPECT_EQ(mixed::native_bf16(at::kBFloat16), cpu_has_native_bf16());
  if (!cpu_has_native_bf16())
    EXPECT_TRUE(at::equal(mixed::matmul(q, k.transpose(-2, -1), at::kBFloat16), at::matmul(q, k.transpose(-2, -1))));
}

TEST(MixedMatmul, StoredWeightKeepsSixteenBitFilesForFp32AndRoundsForBf16) {
  at::Tensor b = at::ones({4, 4}, at::kBFloat16), h = at::ones({4, 4}, at::kHalf), f = at::ones({4, 4});
  at::Tensor d = at::ones({4, 4}, at::kDouble);
  EXPECT_EQ(mixed::stored_weight(b, at::kFloat).data_ptr(), b.data_ptr());  // zero-copy
  EXPECT_EQ(mixed::stored_weight(h, at::kFloat).data_ptr(), h.data_ptr());
  EXPECT_EQ(mixed::stored_weight(f, at::kFloat).data_ptr(), f.data_ptr());
  EXPECT_EQ(mixed::stored_weight(d, at::kFloat).scalar_type(), at::kFloat);
  EXPECT_EQ(mixed::stored_weight(f, at::kBFloat16).scalar_type(), at::kBFloat16);
  EXPECT_EQ(mixed::stored_weight(h, at::kBFloat16).scalar_type(), at::kBFloat16);
  EXPECT_EQ(mixed::stored_weight(b, at::kBFloat16).data_ptr(), b.data_ptr());
  EXPECT_TRUE(mixed::stored_weight(f.t(), at::kFloat).is_contiguous());
}

// ---------------------------------------------------------------- 16-bit files in fp32 precision

// A state dict written to `path` in `dt` and the same values upcast to float32 at `path32`.
struct TwoFiles {
  std::string path16, path32;
  TwoFiles(const std::vector<std::pair<std::string, at::Tensor>>& tensors, at::ScalarType dt, const std::string& dir) {
    std::vector<std::pair<std::string, at::Tensor>> t16, t32;
    for (const auto& [n, t] : tensors) {
      at::Tensor r = t.to(dt).contiguous();
      t16.emplace_back(n, r);
      t32.emplace_back(n, r.to(at::kFloat));
    }
    path16 = dir + "/w16.safetensors";
    path32 = dir + "/w32.safetensors";
    tio::write_tensors(path16, t16);
    tio::write_tensors(path32, t32);
  }
};

TEST(MixedMatmul, VitBertAndProjectionFromA16BitFileEqualConvertingUpFront) {
  auto g = gen(9);
  const int64_t D = 64, H = 4, M = 128;
  std::vector<std::pair<std::string, at::Tensor>> t;
  auto add = [&](const std::string& n, std::vector<int64_t> s, double scale = 0.05, double off = 0) {
    t.emplace_back(n, at::randn(s, g) * scale + off);
  };
  // one EVA-style post-norm block (fused qkv + q/v bias) and one open_clip pre-norm block
  for (const std::string p : {"eva.", "oc."}) {
    add(p + "norm1.weight", {D}, 0.05, 1);
    add(p + "norm1.bias", {D});
    add(p + "norm2.weight", {D}, 0.05, 1);
    add(p + "norm2.bias", {D});
    add(p + "mlp.fc1.weight", {M, D});
    add(p + "mlp.fc1.bias", {M});
    add(p + "mlp.fc2.weight", {D, M});
    add(p + "mlp.fc2.bias", {D});
  }
  add("eva.attn.qkv.weight", {3 * D, D});
  add("eva.attn.q_bias", {D});
  add("eva.attn.v_bias", {D});
  add("eva.attn.proj.weight", {D, D});
  add("eva.attn.proj.bias", {D});
  add("oc.attn.in_proj_weight", {3 * D, D});
  add("oc.attn.in_proj_bias", {3 * D});
  add("oc.attn.out_proj.weight", {D, D});
  add("oc.attn.out_proj.bias", {D});
  add("proj", {D, 32});
  add("head.0.weight", {M, D});
  add("head.0.bias", {M});
  add("head.2.weight", {32, M});
  add("head.2.bias", {32});
  auto spec = [&](bool eva) {
    vit::BlockSpec s;
    s.attn.dim = D;
    s.attn.heads = H;
    s.attn.layout = eva ? vit::QkvLayout::FusedQV : vit::QkvLayout::Packed;
    s.attn.out_name = eva ? "proj" : "out_proj";
    s.mlp_hidden = M;
    s.norm = eva ? vit::NormPlacement::Post : vit::NormPlacement::Pre;
    s.norm1_name = "norm1";
    s.norm2_name = "norm2";
    s.fc1_name = "fc1";
    s.fc2_name = "fc2";
    return s;
  };
  const at::Tensor x = at::randn({2, 19, D}, g);
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    auto dir = testkit::make_temp_dir("mixed_vit");
    TwoFiles files(t, dt, dir);
    auto sd16 = tio::load_checkpoint(files.path16), sd32 = tio::load_checkpoint(files.path32);
    WeightSource w16(sd16, at::kFloat, "Test"), w32(sd32, at::kFloat, "Test");
    auto run = [&](const WeightSource& w, vit::Block* keep) {
      vit::Block eva, oc;
      eva.load(w, "eva", spec(true));
      oc.load(w, "oc", spec(false));
      vit::Linear proj;
      proj.load_matrix(w, "proj", D, 32);
      auto head = htsat::ProjectionMlp::load(w, "head.", D, M, 32, at::kFloat);
      if (keep) *keep = eva;
      at::Tensor h = oc.forward(eva.forward(x, vit::causal_mask(19)));
      return std::vector<at::Tensor>{h, proj.forward(h), head.forward(h)};
    };
    vit::Block kept;
    auto a = run(w16, &kept), b = run(w32, nullptr);
    // The 16-bit weights stay where the file is.
    const auto& raw = sd16.at("eva.mlp.fc1.weight");
    EXPECT_EQ(kept.mlp.fc1.weight.scalar_type(), dt);
    EXPECT_EQ(kept.mlp.fc1.weight.data_ptr(), raw_ptr(raw, 2));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << at::toString(dt) << " output " << i;
  }
}

TEST(MixedMatmul, BertFromABf16FileInFp32EqualsConvertingUpFront) {
  bert::BertConfig c;
  c.vocab_size = 50;
  c.hidden = 32;
  c.heads = 4;
  c.intermediate = 64;
  c.layers = 2;
  c.max_positions = 40;
  c.pooler = true;
  // Random float32 weights, through a file in bf16 and in float32 (same values).
  auto model32 = bert::BertModel::load(c, WeightSource::random(at::kFloat, 3));
  std::vector<std::pair<std::string, at::Tensor>> t;
  auto lin = [&](const std::string& p, const bert::Linear& l) {
    t.emplace_back(p + ".weight", l.weight);
    t.emplace_back(p + ".bias", l.bias);
  };
  auto ln = [&](const std::string& p, const bert::LayerNorm& l) {
    t.emplace_back(p + ".weight", l.weight);
    t.emplace_back(p + ".bias", l.bias);
  };
  t.emplace_back("embeddings.word_embeddings.weight", model32.embeddings.word_embeddings);
  t.emplace_back("embeddings.position_embeddings.weight", model32.embeddings.position_embeddings);
  t.emplace_back("embeddings.token_type_embeddings.weight", model32.embeddings.token_type_embeddings);
  ln("embeddings.LayerNorm", model32.embeddings.layer_norm);
  for (size_t i = 0; i < model32.layers.size(); ++i) {
    const auto& l = model32.layers[i];
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    lin(p + "attention.self.query", l.query);
    lin(p + "attention.self.key", l.key);
    lin(p + "attention.self.value", l.value);
    lin(p + "attention.output.dense", l.attention_output_dense);
    ln(p + "attention.output.LayerNorm", l.attention_output_norm);
    lin(p + "intermediate.dense", l.intermediate_dense);
    lin(p + "output.dense", l.output_dense);
    ln(p + "output.LayerNorm", l.output_norm);
  }
  lin("pooler.dense", model32.pooler_dense);
  if (model32.embeddings.position_ids.defined()) t.emplace_back("embeddings.position_ids", model32.embeddings.position_ids);
  auto dir = testkit::make_temp_dir("mixed_bert");
  std::vector<std::pair<std::string, at::Tensor>> t16, t32;
  for (const auto& [n, v] : t) {
    const bool f = at::isFloatingType(v.scalar_type());
    t16.emplace_back(n, f ? v.to(at::kBFloat16).contiguous() : v.contiguous());
    t32.emplace_back(n, f ? v.to(at::kBFloat16).to(at::kFloat) : v.contiguous());
  }
  tio::write_tensors(dir + "/a.safetensors", t16);
  tio::write_tensors(dir + "/b.safetensors", t32);
  auto sd16 = tio::load_checkpoint(dir + "/a.safetensors"), sd32 = tio::load_checkpoint(dir + "/b.safetensors");
  auto m16 = bert::BertModel::load(c, WeightSource(sd16, at::kFloat, "Test"));
  auto m32 = bert::BertModel::load(c, WeightSource(sd32, at::kFloat, "Test"));
  EXPECT_EQ(m16.layers[0].query.weight.scalar_type(), at::kBFloat16);
  at::Tensor ids = at::randint(0, 50, {3, 11}, gen(4)), mask = at::ones({3, 11}, at::kLong);
  mask.select(0, 1).narrow(0, 7, 4).zero_();
  at::Tensor h16 = m16.forward(ids, mask), h32 = m32.forward(ids, mask);
  EXPECT_TRUE(at::equal(h16, h32));
  EXPECT_TRUE(at::equal(m16.pool(h16), m32.pool(h32)));
}

// EVA-CLIP: the fixture's random weights stored in 16 bits, in fp32 precision, both ways.
TEST(MixedMatmul, EvaClipFp32FromA16BitFileIsBitIdenticalToConvertingUpFront) {
  OMNIBIND_REQUIRE_SHARED();
  const std::string fx = testkit::shared_path("fixtures/eva02_clip_mini/");
  auto weights = tio::read_safetensors(fx + "weights.safetensors");
  auto config = eva_clip::load_config(fx + "config.json");
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& n : weights.tensors.names()) t.emplace_back(n, tio::to_tensor(weights.tensors.at(n)));
  auto g = gen(11);
  const int64_t S = config.vision.image_size;
  at::Tensor px = at::randn({2, 3, S, S}, g);
  at::Tensor ids = at::randint(1, config.text.vocab_size - 1, {2, config.text.context_length}, g);
  ids.select(1, 9).fill_(config.text.vocab_size - 1);  // an EOT to pool
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    auto dir = testkit::make_temp_dir("mixed_eva");
    TwoFiles files(t, dt, dir);
    auto sd16 = tio::load_checkpoint(files.path16), sd32 = tio::load_checkpoint(files.path32);
    auto m16 = eva_clip::EvaClipModel::load(config, WeightSource(sd16, at::kFloat, "EVA-CLIP"));
    auto m32 = eva_clip::EvaClipModel::load(config, WeightSource(sd32, at::kFloat, "EVA-CLIP"));
    const auto& raw = sd16.at("visual.blocks.0.attn.qkv.weight");
    EXPECT_EQ(m16.visual.blocks.blocks[0].attn.qkv.weight.data_ptr(), raw_ptr(raw, 2));  // mapped, not converted
    EXPECT_TRUE(at::equal(m16.encode_image(px), m32.encode_image(px))) << at::toString(dt);
    EXPECT_TRUE(at::equal(m16.encode_text(ids), m32.encode_text(ids))) << at::toString(dt);
    // And through the expert (which keeps the file mapped in fp32 now).
    ExpertOptions o16, o32;
    o16.weights = files.path16;
    o32.weights = files.path32;
    o16.config = o32.config = fx + "config.json";
    auto e16 = eva_clip::make_eva_clip_expert(o16), e32 = eva_clip::make_eva_clip_expert(o32);
    EXPECT_TRUE(at::equal(e16->encode(Modality::Image, px), e32->encode(Modality::Image, px))) << at::toString(dt);
  }
}

// ---------------------------------------------------------------- native vs upcast (child processes)

// The child half: computes a few outputs with OMNIBIND_BF16_MATMUL as its parent set it and writes
// them to $OMNIBIND_MIXED_OUT. Skipped when run directly.
TEST(MixedMatmulChild, WriteOutputs) {
  const char* out = std::getenv("OMNIBIND_MIXED_OUT");
  if (!out) GTEST_SKIP() << "only run as a child of MixedMatmul.NativeAndUpcastAgreeWithinBf16Tolerance";
  auto g = gen(21);
  const int64_t D = 64;
  at::Tensor x = at::randn({2, 33, D}, g);
  at::Tensor w = (at::randn({96, D}, g) * 0.05).to(at::kBFloat16), b = (at::randn({96}, g) * 0.01).to(at::kBFloat16);
  at::Tensor q = at::randn({2, 4, 33, 16}, g), k = at::randn({2, 4, 33, 16}, g);
  // A small ViT stack and an ImageBind-style block in bf16 precision (random bf16 weights).
  vit::BlockSpec s = vit::BlockSpec::open_clip(D, 4, 4 * D, vit::Activation::GeluErf);
  vit::Transformer tr;
  tr.load(WeightSource::random(at::kBFloat16, 5), "t", 2, s);
  imagebind::Block ib;
  ib.load(WeightSource::random(at::kBFloat16, 6), "b", D, 4, false);
  std::vector<std::pair<std::string, at::Tensor>> outs = {
      {"linear", mixed::linear(x, w, b, at::kBFloat16)},
      {"matmul", mixed::matmul(q, k.transpose(-2, -1), at::kBFloat16)},
      {"vit", tr.forward(x, vit::causal_mask(33))},
      {"imagebind", ib.forward(x, at::Tensor())},
      {"native", at::full({1}, mixed::native_bf16(at::kBFloat16) ? 1.0f : 0.0f)},
  };
  for (const auto& [n, t] : outs) ASSERT_EQ(t.scalar_type(), at::kFloat) << n;
  tio::write_tensors(out, outs);
}

// Runs this test program's MixedMatmulChild with OMNIBIND_BF16_MATMUL=mode; returns its outputs.
tio::SafetensorsFile child_outputs(const std::string& mode, const std::string& dir) {
  const std::string out = dir + "/" + mode + ".safetensors";
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    std::string v = *e;
    if (v.rfind("OMNIBIND_BF16_MATMUL=", 0) == 0 || v.rfind("OMNIBIND_MIXED_OUT=", 0) == 0) continue;
    env_s.push_back(v);
  }
  env_s.push_back("OMNIBIND_BF16_MATMUL=" + mode);
  env_s.push_back("OMNIBIND_MIXED_OUT=" + out);
  std::vector<char*> envp;
  for (auto& v : env_s) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=MixedMatmulChild.WriteOutputs";
  std::vector<char*> argv = {exe.data(), filter.data(), nullptr};
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  EXPECT_EQ(posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << mode << " failed";
  return tio::read_safetensors(out);
}

TEST(MixedMatmul, NativeAndUpcastAgreeWithinBf16Tolerance) {
  auto dir = testkit::make_temp_dir("mixed_child");
  auto native = child_outputs("native", dir), upcast = child_outputs("upcast", dir);
  ASSERT_EQ(tio::to_tensor(native.tensors.at("native")).item<float>(), 1.0f);
  ASSERT_EQ(tio::to_tensor(upcast.tensors.at("native")).item<float>(), 0.0f);
  for (const char* n : {"linear", "matmul", "vit", "imagebind"}) {
    at::Tensor a = tio::to_tensor(native.tensors.at(n)).to(at::kDouble), b = tio::to_tensor(upcast.tensors.at(n)).to(at::kDouble);
    ASSERT_EQ(a.sizes(), b.sizes()) << n;
    const double rel = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
    at::Tensor af = a.reshape({-1, a.size(-1)}), bf = b.reshape({-1, b.size(-1)});
    const double cos = ((af * bf).sum(-1) / (af.norm(2, {-1}) * bf.norm(2, {-1}))).min().item<double>();
    std::printf("[ native vs upcast ] %-9s max rel %.3g min cosine %.6f\n", n, rel, cos);
    EXPECT_LT(rel, 3e-2) << n;  // bf16 keeps 8 significant bits: ~0.4% per rounding, a few roundings deep
    EXPECT_GT(cos, 0.999) << n;
    EXPECT_FALSE(at::equal(a, b)) << n << ": the native path did not round anything";
  }
}

}  // namespace
