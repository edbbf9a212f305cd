#include "omnibind/experts/bert/bert_model.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "omnibind/common/error.h"
#include "omnibind/experts/mixed_matmul.h"
#include "omnibind/experts/weight_source.h"

namespace omnibind::experts::bert {
namespace {

using Kind = WeightSource::Kind;

// A tensor kept in float32 whatever the compute dtype (embedding tables, LayerNorms): the stored
// values as they are (zero-copy for float32 files), never rounded through bfloat16.
at::Tensor get_f32(const WeightSource& w, const std::string& name, const std::vector<int64_t>& shape, Kind kind) {
  if (w.family() == "random") return w.get(name, shape, kind).to(at::kFloat);
  at::Tensor t = w.get_raw(name, shape);
  require(at::isFloatingType(t.scalar_type()), w.family() + " checkpoint: tensor '" + name + "' is not floating point");
  return t.scalar_type() == at::kFloat ? t.contiguous() : t.to(at::kFloat);
}

// A matmul weight (stored by mixed_matmul.h's rule) and its bias in the compute dtype.
Linear linear(const WeightSource& w, const std::string& prefix, int64_t out, int64_t in, at::ScalarType dtype) {
  at::Tensor weight = w.get_matmul(prefix + ".weight", {out, in}, dtype);
  at::Tensor bias = w.get(prefix + ".bias", {out}, Kind::Bias);
  return Linear{weight, bias.scalar_type() == dtype ? bias : bias.to(dtype), dtype};
}

LayerNorm layer_norm(const WeightSource& w, const std::string& prefix, int64_t d) {
  return LayerNorm{get_f32(w, prefix + ".weight", {d}, Kind::NormWeight),
                   get_f32(w, prefix + ".bias", {d}, Kind::Bias)};
}

// y = x W^T + b by experts/mixed_matmul.h's rule, float32.
at::Tensor lin(const at::Tensor& x, const Linear& l) { return mixed::linear(x, l.weight, l.bias, l.compute); }

at::Tensor ln(const at::Tensor& x, const LayerNorm& n, double eps) {
  return at::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
}

}  // namespace

BertModel BertModel::load(const BertConfig& c, const WeightSource& w, at::ScalarType dtype) {
  require(dtype == at::kFloat || dtype == at::kBFloat16, "text encoder precision must be fp32 or bf16");
  const int64_t H = c.hidden, I = c.intermediate;
  BertModel m;
  m.config = c;
  m.compute = dtype;
  auto& e = m.embeddings;
  e.word_embeddings = get_f32(w, "embeddings.word_embeddings.weight", {c.vocab_size, H}, Kind::Embedding);
  e.position_embeddings = get_f32(w, "embeddings.position_embeddings.weight", {c.max_positions, H}, Kind::Embedding);
  e.token_type_embeddings = get_f32(w, "embeddings.token_type_embeddings.weight", {c.type_vocab, H}, Kind::Embedding);
  e.layer_norm = layer_norm(w, "embeddings.LayerNorm", H);
  if (w.family() == "random") {
    e.position_ids = at::arange(c.max_positions, at::kLong).unsqueeze(0);
  } else {
    // transformers 4.30 saves the arange buffer with the weights (strict loading wants it); BERT
    // reads its positions from it, RoBERTa computes them from the ids.
    e.position_ids = w.get_raw("embeddings.position_ids", {1, c.max_positions});
    require(e.position_ids.scalar_type() == at::kLong,
            w.family() + " checkpoint: 'embeddings.position_ids' is not int64");
    require(e.position_ids.min().item<int64_t>() >= 0 && e.position_ids.max().item<int64_t>() < c.max_positions,
            w.family() + " checkpoint: 'embeddings.position_ids' holds values outside the position table");
  }
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    BertLayer l;
    l.query = linear(w, p + "attention.self.query", H, H, dtype);
    l.key = linear(w, p + "attention.self.key", H, H, dtype);
    l.value = linear(w, p + "attention.self.value", H, H, dtype);
    l.attention_output_dense = linear(w, p + "attention.output.dense", H, H, dtype);
    l.attention_output_norm = layer_norm(w, p + "attention.output.LayerNorm", H);
    l.intermediate_dense = linear(w, p + "intermediate.dense", I, H, dtype);
    l.output_dense = linear(w, p + "output.dense", H, I, dtype);
    l.output_norm = layer_norm(w, p + "output.LayerNorm", H);
    m.layers.push_back(std::move(l));
  }
  if (c.pooler) m.pooler_dense = linear(w, "pooler.dense", H, H, dtype);
  return m;
}

at::Tensor BertModel::position_ids(const at::Tensor& ids) const {
  const int64_t B = ids.size(0), L = ids.size(1);
  if (config.positions == PositionKind::Absolute) return embeddings.position_ids.narrow(1, 0, L).expand({B, L});
  at::Tensor real = ids.ne(config.pad_token_id).to(at::kLong);
  return at::cumsum(real, 1) * real + config.pad_token_id;
}

at::Tensor BertModel::forward(const at::Tensor& ids_in, const at::Tensor& mask_in, BertStages* stages) const {
  const auto& c = config;
  require(ids_in.dim() == 2 && mask_in.sizes() == ids_in.sizes(), "text encoder: ids and mask must both be [B, L]");
  const at::Tensor ids = ids_in.to(at::kLong).contiguous();
  const at::Tensor mask = mask_in.to(at::kLong).contiguous();
  const int64_t B = ids.size(0), L = ids.size(1), H = c.hidden, nh = c.heads, hd = H / nh;
  if (ids.numel() > 0)
    require(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < c.vocab_size,
            "text encoder: token ids outside [0, " + std::to_string(c.vocab_size) +
                ") (tokenizer and checkpoint disagree?)");
  at::Tensor pos = position_ids(ids);
  if (pos.numel() > 0)
    require(pos.max().item<int64_t>() < c.max_positions, "text encoder: " + std::to_string(L) + " tokens exceed the " +
                                                             std::to_string(c.max_positions) + " positions");

  // --- embeddings: (word + token_type[0]) + position, LayerNorm (the reference's addition order)
  at::Tensor x = at::embedding(embeddings.word_embeddings, ids) + embeddings.token_type_embeddings[0];
  x = x + at::embedding(embeddings.position_embeddings, pos);
  x = ln(x, embeddings.layer_norm, c.ln_eps);  // [B, L, H]
  if (stages) stages->embeddings = x;

  // Additive key mask [B, 1, 1, L]: 0 for tokens, float32 min for padding.
  const float fmin = std::numeric_limits<float>::lowest();
  at::Tensor add_mask = (at::rsub(mask.to(at::kFloat), 1.0) * fmin).view({B, 1, 1, L});
  const double scale = std::sqrt(static_cast<double>(hd));

  for (const auto& l : layers) {
    auto heads = [&](const at::Tensor& t) { return t.view({B, L, nh, hd}).permute({0, 2, 1, 3}); };
    at::Tensor q = heads(lin(x, l.query)), k = heads(lin(x, l.key)), v = heads(lin(x, l.value));
    at::Tensor scores = mixed::matmul(q, k.transpose(-1, -2), compute) / scale + add_mask;  // [B, nh, L, L]
    at::Tensor ctx = mixed::matmul(at::softmax(scores, -1), v, compute).permute({0, 2, 1, 3}).reshape({B, L, H});
    at::Tensor a = ln(lin(ctx, l.attention_output_dense) + x, l.attention_output_norm, c.ln_eps);
    at::Tensor f = lin(at::gelu(lin(a, l.intermediate_dense)), l.output_dense);
    x = ln(f + a, l.output_norm, c.ln_eps);
    if (stages) stages->layer_out.push_back(x);
  }
  return x;
}

at::Tensor BertModel::pool(const at::Tensor& hidden) const {
  require(config.pooler, "text encoder: this model has no pooler");
  return at::tanh(lin(hidden.select(1, 0), pooler_dense));
}

}  // namespace omnibind::experts::bert
