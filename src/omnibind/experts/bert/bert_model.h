// The BERT / RoBERTa text encoder of transformers 4.30 (BertModel, RobertaModel) in eval mode, as
// plain structs whose members mirror the checkpoint keys under the model's root
// ("text_encoder.text_encoder." in WavCaps, "text_branch." in CLAP).
// Shapes: B texts, L tokens, H = hidden, I = intermediate, nh heads, hd = H / nh.
//
// Embeddings = LayerNorm((word[ids] + token_type[0]) + position[pos]); then post-LN layers:
//   a = LayerNorm(x + dense(softmax(q k^T / sqrt(hd) + (1 - mask) * float32_min) v))
//   x = LayerNorm(a + dense(gelu_erf(dense(a))))
// WavCaps reads the last hidden state at [CLS]; CLAP reads pooler = tanh(dense(h[:, 0])).
// fp32 or bf16: matmuls by experts/mixed_matmul.h's one rule (bf16 weights; bf16 GEMMs only where
// the CPU has native bf16, else fp32 GEMMs over weights upcast per call); embedding tables,
// LayerNorms, softmax and residual sums stay float32.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/experts/bert/bert_config.h"

namespace omnibind::experts {
class WeightSource;  // experts/weight_source.h
}  // namespace omnibind::experts

namespace omnibind::experts::bert {

struct Linear {  // nn.Linear: weight [out, in], bias [out], stored by experts/mixed_matmul.h's rule
  at::Tensor weight, bias;
  at::ScalarType compute = at::kFloat;  // the model's precision
};
struct LayerNorm {  // weight, bias [H], float32
  at::Tensor weight, bias;
};

// embeddings.*
struct BertEmbeddings {
  at::Tensor word_embeddings;        // word_embeddings.weight [V, H]
  at::Tensor position_embeddings;    // position_embeddings.weight [P, H]
  at::Tensor token_type_embeddings;  // token_type_embeddings.weight [T, H] (row 0 is used)
  at::Tensor position_ids;           // position_ids [1, P] int64 (persistent buffer in 4.30)
  LayerNorm layer_norm;              // LayerNorm.*
};

// encoder.layer.N.*
struct BertLayer {
  Linear query, key, value;         // attention.self.{query,key,value}
  Linear attention_output_dense;    // attention.output.dense
  LayerNorm attention_output_norm;  // attention.output.LayerNorm
  Linear intermediate_dense;        // intermediate.dense [I, H]
  Linear output_dense;              // output.dense [H, I]
  LayerNorm output_norm;            // output.LayerNorm
};

// Intermediate results, for parity tests.
struct BertStages {
  at::Tensor embeddings;              // [B, L, H]
  std::vector<at::Tensor> layer_out;  // each [B, L, H]
};

struct BertModel {
  BertConfig config;
  at::ScalarType compute = at::kFloat;
  BertEmbeddings embeddings;
  std::vector<BertLayer> layers;
  Linear pooler_dense;  // pooler.dense, when config.pooler

  // Every tensor of the model from `w`, whose prefix is the model root (names "embeddings.*",
  // "encoder.layer.N.*", "pooler.dense.*"). Shapes are checked against `config`. Pass a float32
  // WeightSource (the one the whole checkpoint is read through); `dtype` (kFloat or kBFloat16)
  // decides the matmul weights.
  static BertModel load(const BertConfig& config, const WeightSource& w, at::ScalarType dtype = at::kFloat);

  // ids, mask [B, L] int64 -> position ids [B, L] int64 (see PositionKind).
  at::Tensor position_ids(const at::Tensor& ids) const;
  // ids, mask [B, L] int64 (mask 1 = token, 0 = padding) -> last hidden state [B, L, H] float32.
  // InputError when an id is outside the vocabulary or L exceeds the position table.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, BertStages* stages = nullptr) const;
  // RobertaPooler / BertPooler: tanh(dense(hidden[:, 0])) -> [B, H] float32. Needs config.pooler.
  at::Tensor pool(const at::Tensor& hidden) const;
};

}  // namespace omnibind::experts::bert
