#include "omnibind/preprocess/siglip_tokenizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string_view>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_text_clean.h"
#include "omnibind/preprocess/sentencepiece_model.h"

namespace omnibind::preprocess {

namespace {

constexpr char32_t kUnderline = 0x2581;  // SentencePiece's word-start mark
const std::u32string kEos = U"</s>", kUnk = U"<unk>";
const std::string kEosPiece = "</s>", kUnkPiece = "<unk>", kUnderlinePiece = "\xE2\x96\x81";

// Appended to the serialized ModelProto: field 3 (normalizer_spec, length 2) holding field 3
// (add_dummy_prefix, varint) = 0. Protobuf merges a repeated embedded message into the earlier one,
// so this is what the reference's `model.normalizer_spec.MergeFrom(NormalizerSpec(add_dummy_prefix=False))`
// produces, without needing the proto classes.
const std::string kNoDummyPrefix("\x1a\x02\x18\x00", 4);

bool is_ascii_punct(char32_t c) {  // Python's string.punctuation
  return c < 0x80 && ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
                      (c >= '{' && c <= '~'));
}

// The reference lowers through re.sub(r"(</s>|<unk>)|(.+?)", ...): one character at a time
// (str.lower() of a single code point: full mappings such as U+0130 -> "i\u0307", never the
// context-dependent final sigma). '.' does not match '\n', whose lower() is itself anyway; the
// special tokens are already lower case.
std::u32string lower_each(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char32_t>(c + 32) : c;
    } else {
      out += python_lower(std::u32string(1, c));
    }
  }
  return out;
}

std::u32string lstrip(const std::u32string& s) {
  size_t a = 0;
  while (a < s.size() && python_isspace(s[a])) ++a;
  return s.substr(a);
}
std::u32string rstrip(const std::u32string& s) {
  size_t b = s.size();
  while (b > 0 && python_isspace(s[b - 1])) --b;
  return s.substr(0, b);
}

// big_vision's canonicalize_text as SiglipTokenizer has it: string.punctuation removed,
// re.sub(r"\s+", " "), strip().
std::u32string canonicalize(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  bool in_space = false;
  for (char32_t c : s) {
    if (is_ascii_punct(c)) continue;  // removed before the whitespace runs are found
    if (python_isspace(c)) {
      if (!in_space) out += U' ';
      in_space = true;
    } else {
      out += c;
      in_space = false;
    }
  }
  return lstrip(rstrip(out));
}

struct Chunk {
  std::u32string text;
  bool special = false;
};

// transformers' Trie.split on the added tokens ("</s>", "<unk>"): non-empty pieces in order.
std::vector<Chunk> split_special(const std::u32string& s) {
  std::vector<Chunk> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    const std::u32string* hit = nullptr;
    if (s.compare(i, kEos.size(), kEos) == 0) hit = &kEos;
    else if (s.compare(i, kUnk.size(), kUnk) == 0) hit = &kUnk;
    if (!hit) { ++i; continue; }
    if (i > start) out.push_back({s.substr(start, i - start), false});
    out.push_back({*hit, true});
    i += hit->size();
    start = i;
  }
  if (start < s.size()) out.push_back({s.substr(start), false});
  return out;
}

std::string printable(const std::string& t) {  // one clean line even for odd bytes
  std::string s;
  for (size_t i = 0; i < t.size() && i < 40; ++i) {
    unsigned char ch = static_cast<unsigned char>(t[i]);
    s += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
  }
  return "'" + s + (t.size() > 40 ? "...'" : "'");
}

}  // namespace

struct SiglipTokenizer::Impl {
  Impl(const std::string& bytes, const std::string& path) : sp(bytes, path) {}
  SentencePieceModel sp;
  int64_t eos = 0, unk = 0;
  size_t unk_length = 0;  // len(sp.encode("<unk>")): the pieces dropped after the "<unk>" prefix
};

SiglipTokenizer::SiglipTokenizer(const std::string& path)
    : impl_(std::make_unique<Impl>(read_file_bytes(path) + kNoDummyPrefix, path)) {
  const auto& sp = impl_->sp;
  require(sp.piece_size() > 0, path + ": not a SentencePiece model (no pieces)");
  const int eos = sp.piece_to_id(kEosPiece);
  require(sp.is_control(eos) && sp.id_to_piece(eos) == kEosPiece,
          path + ": SentencePiece model has no '</s>' piece (expected SigLIP's spiece.model)");
  impl_->eos = eos;
  impl_->unk = sp.piece_to_id(kUnkPiece);
  impl_->unk_length = sp.encode(kUnkPiece).size();
}

SiglipTokenizer::~SiglipTokenizer() = default;

int64_t SiglipTokenizer::eos_id() const { return impl_->eos; }
int64_t SiglipTokenizer::unk_id() const { return impl_->unk; }
int64_t SiglipTokenizer::vocab_size() const { return impl_->sp.piece_size(); }

std::vector<std::string> SiglipTokenizer::pieces(const std::string& text) const {
  // SiglipTokenizer.tokenize: prefix U+2581, literal U+2581 -> ' '.
  std::u32string t(1, kUnderline);
  for (char32_t c : decode_utf8_strict(text)) t += (c == kUnderline) ? U' ' : c;
  // PreTrainedTokenizer.tokenize: lower case (do_lower_case), split on the added tokens; both are
  // AddedToken(lstrip=True, rstrip=True): the neighbours lose their adjacent whitespace.
  auto chunks = split_special(lower_each(t));
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!chunks[i].special) continue;
    if (i + 1 < chunks.size() && !chunks[i + 1].text.empty()) chunks[i + 1].text = lstrip(chunks[i + 1].text);
    if (i > 0 && !chunks[i - 1].text.empty()) chunks[i - 1].text = rstrip(chunks[i - 1].text);
  }
  std::vector<std::string> out;
  for (const auto& c : chunks) {
    if (c.text.empty()) continue;
    if (c.special) {
      out.push_back(encode_utf8(c.text));
      continue;
    }
    // SiglipTokenizer._tokenize: canonicalize, encode "<unk>" + text, drop the "<unk>" pieces.
    std::vector<std::string> p = impl_->sp.encode(kUnkPiece + encode_utf8(canonicalize(c.text)));
    if (p.size() >= impl_->unk_length) p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(impl_->unk_length));
    out.insert(out.end(), p.begin(), p.end());
  }
  // SiglipTokenizer.tokenize: a lone leading U+2581 before a special token is dropped.
  if (out.size() > 1 && out[0] == kUnderlinePiece && (out[1] == kEosPiece || out[1] == kUnkPiece))
    out.erase(out.begin());
  return out;
}

std::vector<int64_t> SiglipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& p : pieces(text)) ids.push_back(impl_->sp.piece_to_id(p));  // unknown -> unk id
  // build_inputs_with_special_tokens: "</s>" unless the text already ends with it.
  if (ids.empty() || ids.back() != impl_->eos) ids.push_back(impl_->eos);
  return ids;
}

std::vector<int64_t> SiglipTokenizer::encode_truncated(const std::string& text, int64_t context) const {
  require(context >= 1, "SigLIP context length must be positive");
  // truncation=True: the sequence before special tokens is cut to context - 1 ids, then "</s>"
  // is added unless the cut sequence already ends with it.
  std::vector<int64_t> ids;
  for (const auto& p : pieces(text)) ids.push_back(impl_->sp.piece_to_id(p));
  if (static_cast<int64_t>(ids.size()) > context - 1) ids.resize(static_cast<size_t>(context - 1));
  if (ids.empty() || ids.back() != impl_->eos) ids.push_back(impl_->eos);
  return ids;
}

at::Tensor SiglipTokenizer::tokenize(const std::vector<std::string>& texts, int64_t context) const {
  auto out = at::full({static_cast<int64_t>(texts.size()), context}, impl_->eos, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t r = 0; r < texts.size(); ++r) {
    const auto ids = encode(texts[r]);
    if (static_cast<int64_t>(ids.size()) > context)
      throw InputError("text " + printable(texts[r]) + ": " + std::to_string(ids.size()) +
                       " SigLIP tokens with </s>, more than the model's " + std::to_string(context) +
                       " positions (the reference cannot embed it either); shorten the text");
    for (size_t i = 0; i < ids.size(); ++i) acc[static_cast<int64_t>(r)][static_cast<int64_t>(i)] = ids[i];
  }
  return out;
}

}  // namespace omnibind::preprocess
