// The model options shared by `search` and `serve`: --model BUNDLE, or --expert NAME with its files.
#pragma once
#include <CLI/CLI.hpp>

#include "omnibind/retrieval/query_embedder.h"

namespace omnibind::cli {

inline void add_embedder_options(CLI::App& sub, retrieval::EmbedderSpec& spec) {
  sub.add_option("--model", spec.model, "OmniBind model bundle (unified space)");
  sub.add_option("--expert", spec.expert, "Embed queries with one registered expert instead of a bundle");
  sub.add_option("--expert-weights", spec.expert_options.weights, "The expert's weights file");
  sub.add_option("--expert-config", spec.expert_options.config, "The expert's JSON config");
  sub.add_option("--expert-size", spec.expert_options.size, "The expert's size name");
  sub.add_option("--bpe-vocab", spec.expert_options.bpe_vocab, "BPE vocabulary for text experts");
}

}  // namespace omnibind::cli
