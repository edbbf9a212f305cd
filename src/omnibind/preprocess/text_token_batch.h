// A batch of tokenised texts as transformers' `tokenizer(texts, padding=..., truncation=True,
// max_length=..., return_tensors="pt")` returns it: input_ids and attention_mask, right-padded.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace omnibind::preprocess {

enum class TextPadding {
  kLongest,    // padding='longest': to the longest row of this batch (BERT in WavCaps)
  kMaxLength,  // padding='max_length': every row to max_length (RoBERTa in CLAP)
};

struct TokenBatch {
  at::Tensor input_ids;       // [B, L] int64
  at::Tensor attention_mask;  // [B, L] int64: 1 for [CLS]/<s>, the tokens and [SEP]/</s>; 0 for padding
};

// rows: per text the token ids without special tokens. Each row is cut to its first
// max_length - 2 ids, wrapped as [first_id] + ids + [last_id] and padded with pad_id.
// InputError when max_length < 3 (transformers logs an error and does not truncate there).
TokenBatch assemble_token_batch(const std::vector<std::vector<int64_t>>& rows, int64_t first_id, int64_t last_id,
                                int64_t pad_id, int64_t max_length, TextPadding padding);

// encode(texts[i]) for every text; an InputError is rethrown naming the row: "text 3: invalid UTF-8 ...".
std::vector<std::vector<int64_t>> encode_text_rows(
    const std::vector<std::string>& texts, const std::function<std::vector<int64_t>(const std::string&)>& encode);

// A text-decoding message without its leading "text: " (for callers that name the text or file).
std::string without_text_prefix(const std::string& message);

}  // namespace omnibind::preprocess
