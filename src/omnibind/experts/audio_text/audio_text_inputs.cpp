#include "omnibind/experts/audio_text/audio_text_inputs.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace omnibind::experts::audio_text {

at::ScalarType parse_precision(const std::string& precision, const std::string& expert) {
  if (precision.empty() || precision == "fp32") return at::kFloat;
  if (precision == "bf16") return at::kBFloat16;
  throw InputError(expert + ": unknown precision '" + precision + "' (expected fp32 or bf16)");
}

media::Audio decode_audio(const MediaInput& in) {
  if (!in.path.empty()) return media::decode_audio_file(in.path);
  require(!in.bytes.empty(), in.describe() + ": no audio data given");
  return media::decode_audio_bytes(in.bytes, in.describe());
}

std::string shape_string(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string quote_text(const std::string& t) {
  std::string s;
  for (size_t i = 0; i < t.size() && i < 40; ++i) {
    const unsigned char ch = static_cast<unsigned char>(t[i]);
    s += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
  }
  return "'" + s + (t.size() > 40 ? "...'" : "'");
}

void check_vocab_size(const std::string& vocab_path, int64_t tokenizer_size, int64_t model_size,
                      const std::string& family) {
  require(tokenizer_size <= model_size, vocab_path + ": the vocabulary has " + std::to_string(tokenizer_size) +
                                            " tokens but the " + family + " checkpoint's word embeddings have " +
                                            std::to_string(model_size) + " rows (wrong vocabulary or --config?)");
}

}  // namespace omnibind::experts::audio_text
