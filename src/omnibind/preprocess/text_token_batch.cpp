#include "omnibind/preprocess/text_token_batch.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {

TokenBatch assemble_token_batch(const std::vector<std::vector<int64_t>>& rows, int64_t first_id, int64_t last_id,
                                int64_t pad_id, int64_t max_length, TextPadding padding) {
  require(max_length >= 3, "tokenizer: max_length must be at least 3 (two special tokens and one text token), got " +
                               std::to_string(max_length));
  const auto keep_max = static_cast<size_t>(max_length - 2);
  int64_t width = padding == TextPadding::kMaxLength ? max_length : 0;
  if (padding == TextPadding::kLongest)
    for (const auto& r : rows) width = std::max<int64_t>(width, static_cast<int64_t>(std::min(r.size(), keep_max)) + 2);
  const auto n = static_cast<int64_t>(rows.size());
  TokenBatch out;
  out.input_ids = at::full({n, width}, pad_id, at::kLong);
  out.attention_mask = at::zeros({n, width}, at::kLong);
  int64_t* ids = out.input_ids.data_ptr<int64_t>();
  int64_t* mask = out.attention_mask.data_ptr<int64_t>();
  for (int64_t r = 0; r < n; ++r) {
    const auto& src = rows[static_cast<size_t>(r)];
    const size_t keep = std::min(src.size(), keep_max);
    int64_t* row = ids + r * width;
    row[0] = first_id;
    std::copy(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(keep), row + 1);
    row[keep + 1] = last_id;
    std::fill(mask + r * width, mask + r * width + static_cast<int64_t>(keep) + 2, int64_t{1});
  }
  return out;
}

std::string without_text_prefix(const std::string& message) {
  return message.rfind("text: ", 0) == 0 ? message.substr(6) : message;
}

std::vector<std::vector<int64_t>> encode_text_rows(
    const std::vector<std::string>& texts, const std::function<std::vector<int64_t>(const std::string&)>& encode) {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      rows.push_back(encode(texts[i]));
    } catch (const InputError& e) {
      throw InputError("text " + std::to_string(i) + ": " + without_text_prefix(e.what()));
    }
  }
  return rows;
}

}  // namespace omnibind::preprocess
