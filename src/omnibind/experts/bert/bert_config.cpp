#include "omnibind/experts/bert/bert_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/error.h"

namespace omnibind::experts::bert {

BertConfig bert_base_uncased() { return BertConfig{}; }

BertConfig roberta_base() {
  BertConfig c;
  c.name = "roberta-base";
  c.vocab_size = 50265;
  c.max_positions = 514;
  c.type_vocab = 1;
  c.pad_token_id = 1;
  c.ln_eps = 1e-5;
  c.positions = PositionKind::Roberta;
  c.pooler = true;
  return c;
}

BertConfig bert_config_from_json(const nlohmann::json& j, BertConfig c, const std::string& where) {
  require(j.is_object(), where + ": the text encoder config must be a JSON object");
  auto get_int = [&](const char* key, int64_t& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    require(j[key].is_number_integer() && j[key].get<int64_t>() > 0,
            where + ": '" + key + "' must be a positive integer");
    out = j[key].get<int64_t>();
  };
  if (j.contains("model_type") && j["model_type"].is_string()) {
    const std::string t = j["model_type"].get<std::string>();
    require(t == "bert" || t == "roberta",
            where + ": model_type '" + t + "' is not supported (expected bert or roberta)");
    if (t == "roberta" && c.positions != PositionKind::Roberta) {
      BertConfig r = roberta_base();
      r.pooler = c.pooler;
      c = r;
    } else if (t == "bert" && c.positions != PositionKind::Absolute) {
      BertConfig b = bert_base_uncased();
      b.pooler = c.pooler;
      c = b;
    }
  }
  get_int("vocab_size", c.vocab_size);
  get_int("hidden_size", c.hidden);
  get_int("num_hidden_layers", c.layers);
  get_int("num_attention_heads", c.heads);
  get_int("intermediate_size", c.intermediate);
  get_int("max_position_embeddings", c.max_positions);
  get_int("type_vocab_size", c.type_vocab);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer())
    c.pad_token_id = j["pad_token_id"].get<int64_t>();
  if (j.contains("layer_norm_eps")) {
    require(j["layer_norm_eps"].is_number() && j["layer_norm_eps"].get<double>() > 0,
            where + ": 'layer_norm_eps' must be a positive number");
    c.ln_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("hidden_act") && j["hidden_act"].is_string())
    require(
        j["hidden_act"].get<std::string>() == "gelu",
        where + ": hidden_act '" + j["hidden_act"].get<std::string>() + "' is not supported (BERT/RoBERTa use gelu)");
  if (j.contains("position_embedding_type") && j["position_embedding_type"].is_string())
    require(j["position_embedding_type"].get<std::string>() == "absolute",
            where + ": position_embedding_type '" + j["position_embedding_type"].get<std::string>() +
                "' is not supported (only absolute)");
  require(c.hidden % c.heads == 0, where + ": hidden_size " + std::to_string(c.hidden) + " is not divisible by " +
                                       std::to_string(c.heads) + " attention heads");
  require(c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size, where + ": pad_token_id is outside the vocabulary");
  return c;
}

}  // namespace omnibind::experts::bert
