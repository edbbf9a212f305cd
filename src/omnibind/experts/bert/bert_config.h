// Configuration of the BERT-style text encoder shared by WavCaps (bert-base-uncased, [CLS] state,
// no pooler) and LAION-CLAP (roberta-base, tanh pooler): transformers 4.30's BertModel and
// RobertaModel differ only in how positions are numbered, the LayerNorm eps and the sizes.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace omnibind::experts::bert {

// How position ids are made (transformers 4.30):
//  Absolute - BertEmbeddings: the `position_ids` buffer, 0..L-1.
//  Roberta  - create_position_ids_from_input_ids: padding_idx + cumsum(ids != padding_idx) *
//             (ids != padding_idx): the first real token gets padding_idx + 1, every pad id (also a
//             literal "<pad>" inside the text) gets padding_idx. Computed from the ids, not the mask.
enum class PositionKind { Absolute, Roberta };

struct BertConfig {
  std::string name = "bert-base-uncased";
  int64_t vocab_size = 30522;
  int64_t hidden = 768;         // hidden_size
  int64_t layers = 12;          // num_hidden_layers
  int64_t heads = 12;           // num_attention_heads
  int64_t intermediate = 3072;  // intermediate_size
  int64_t max_positions = 512;  // max_position_embeddings
  int64_t type_vocab = 2;       // type_vocab_size (only row 0 is ever used)
  int64_t pad_token_id = 0;
  double ln_eps = 1e-12;  // layer_norm_eps: BERT 1e-12, RoBERTa 1e-5
  PositionKind positions = PositionKind::Absolute;
  bool pooler = false;  // pooler.dense in the checkpoint (RoBERTa in CLAP; WavCaps builds BERT without)
};

// The released models: "bert-base-uncased" and "roberta-base" (transformers' hub config.json).
BertConfig bert_base_uncased();
BertConfig roberta_base();

// Applies a transformers config.json object (hidden_size, num_hidden_layers, num_attention_heads,
// intermediate_size, vocab_size, max_position_embeddings, type_vocab_size, layer_norm_eps,
// pad_token_id, model_type, hidden_act, position_embedding_type) on top of `base`. `where` names
// the file/section in errors. InputError on unsupported settings (hidden_act other than gelu,
// relative position embeddings, hidden not divisible by heads).
BertConfig bert_config_from_json(const nlohmann::json& j, BertConfig base, const std::string& where);

}  // namespace omnibind::experts::bert
