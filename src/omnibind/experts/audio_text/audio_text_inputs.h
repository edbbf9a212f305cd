// Small helpers the wavcaps and clap experts share: precision, decoding an input, naming the input
// in error messages, picking tokenizer files from --vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/media/audio.h"

namespace omnibind::experts::audio_text {

// "fp32" (or "") -> kFloat, "bf16" -> kBFloat16; InputError naming `expert` otherwise.
at::ScalarType parse_precision(const std::string& precision, const std::string& expert);

// The input's audio (file or bytes), decoded; InputError naming it.
media::Audio decode_audio(const MediaInput& in);

// "[2, 30]"
std::string shape_string(const at::Tensor& t);

// A printable, one-line rendering of a text for messages: "'first 40 chars...'" (non-ASCII as '?').
std::string quote_text(const std::string& text);

// Runs f; an InputError is rethrown starting with the input's name (unless it already does).
template <class F>
auto with_input_name(const MediaInput& in, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError& e) {
    const std::string msg = e.what(), name = in.describe();
    throw InputError(msg.rfind(name, 0) == 0 ? msg : name + ": " + msg);
  }
}

// Runs f (tokenising in.text); an InputError is rethrown as "text '<start of it>': <reason>".
template <class F>
auto with_text_name(const MediaInput& in, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError& e) {
    std::string msg = e.what();
    for (const char* p : {"text 0: ", "text: "})
      if (msg.rfind(p, 0) == 0) msg = msg.substr(std::string(p).size());
    throw InputError("text " + quote_text(in.text) + ": " + msg);
  }
}

// InputError when the tokenizer knows more tokens than the checkpoint's word embeddings hold.
void check_vocab_size(const std::string& vocab_path, int64_t tokenizer_size, int64_t model_size,
                      const std::string& family);

}  // namespace omnibind::experts::audio_text
