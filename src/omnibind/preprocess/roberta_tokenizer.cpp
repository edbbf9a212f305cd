#include "omnibind/preprocess/roberta_tokenizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/added_token_split.h"
#include "omnibind/preprocess/clip_text_clean.h"
#include "omnibind/preprocess/python_unicode.h"

namespace omnibind::preprocess {
namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path + ": cannot open the RoBERTa " + std::string(what) + " file");
  std::ostringstream ss;
  ss << in.rdbuf();
  require(!in.bad(), path + ": cannot read the RoBERTa " + std::string(what) + " file");
  return ss.str();
}

enum class CharClass { kLetter, kNumber, kOther, kSpace };

CharClass char_class(char32_t c) {
  if (regex_is_space(c)) return CharClass::kSpace;
  if (unicode_is_letter(c)) return CharClass::kLetter;
  if (unicode_is_number(c)) return CharClass::kNumber;
  return CharClass::kOther;
}

// Start and end (code point indices) of every GPT-2 regex match, scanning as re.findall does.
std::vector<std::pair<size_t, size_t>> gpt2_split(const std::u32string& t) {
  static const char32_t* const kContractions[] = {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"};
  std::vector<std::pair<size_t, size_t>> out;
  const size_t n = t.size();
  size_t i = 0;
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    if (t[i] == U'\'') {
      size_t len = 0;
      for (const char32_t* s : kContractions) {
        const std::u32string_view suffix(s);
        if (t.compare(i + 1, suffix.size(), suffix) == 0 && i + 1 + suffix.size() <= n) {
          len = 1 + suffix.size();
          break;
        }
      }
      if (len) {
        out.emplace_back(i, i + len);
        i += len;
        continue;
      }
    }
    // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
    size_t run = i;
    if (t[i] == U' ' && i + 1 < n && char_class(t[i + 1]) != CharClass::kSpace) run = i + 1;
    const CharClass cls = char_class(t[run]);
    if (cls != CharClass::kSpace) {
      size_t end = run + 1;
      while (end < n && char_class(t[end]) == cls) ++end;
      out.emplace_back(i, end);
      i = end;
      continue;
    }
    // '\s+(?!\S)|\s+': a whitespace run; when a non-space follows, its last character is left to
    // begin the next match (unless the run is that one character).
    size_t end = i;
    while (end < n && char_class(t[end]) == CharClass::kSpace) ++end;
    if (end < n && end - i >= 2) --end;
    out.emplace_back(i, end);
    i = end;
  }
  return out;
}

}  // namespace

struct RobertaBpeTokenizer::Impl {
  std::string byte_encoder[256];
  std::unordered_map<std::string, int64_t> encoder;
  int64_t bos = 0, pad = 0, eos = 0, unk = 0, mask = 0;
  std::vector<LiteralToken> literals;

  // BPE symbols interned as ints: the 256 byte stand-ins first (symbol b = byte b), then every merge
  // result. merges maps (left, right) to (rank, merged symbol).
  struct Merge {
    int rank;
    int32_t merged;
  };
  std::vector<std::string> symbols;
  std::unordered_map<std::string, int32_t> symbol_index;
  std::unordered_map<uint64_t, Merge> merges;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // piece bytes -> BPE symbols

  int32_t intern(const std::string& s) {
    const auto [it, added] = symbol_index.emplace(s, static_cast<int32_t>(symbols.size()));
    if (added) symbols.push_back(s);
    return it->second;
  }
  static uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // RobertaTokenizer.bpe: while some adjacent pair has a rank, take the lowest-ranked pair and merge
  // all its non-overlapping occurrences left to right. Done with a linked list and a heap of
  // (rank, position) entries checked when popped, O(n log n) instead of the reference's O(n^2) per
  // piece; same result, because a merge never creates another occurrence of the pair being merged
  // (the new symbol is longer than either part), so each round's occurrences are the ones present
  // when it starts.
  std::vector<int32_t> bpe(const std::string& bytes) const {
    const size_t n = bytes.size();
    std::vector<int32_t> sym(n);
    for (size_t i = 0; i < n; ++i) sym[i] = static_cast<unsigned char>(bytes[i]);
    if (n < 2) return sym;
    std::vector<int32_t> next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      prev[i] = static_cast<int32_t>(i) - 1;
    }
    std::vector<char> alive(n, 1);
    using Entry = std::pair<int, int32_t>;  // (rank, left position); smallest rank first
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    const auto rank_at = [&](int32_t i) -> const Merge* {
      if (i < 0 || !alive[static_cast<size_t>(i)] || next[static_cast<size_t>(i)] < 0) return nullptr;
      const auto it =
          merges.find(pair_key(sym[static_cast<size_t>(i)], sym[static_cast<size_t>(next[static_cast<size_t>(i)])]));
      return it == merges.end() ? nullptr : &it->second;
    };
    const auto push = [&](int32_t i) {
      if (const Merge* m = rank_at(i)) heap.emplace(m->rank, i);
    };
    for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
    std::vector<int32_t> round;
    while (!heap.empty()) {
      const auto [rank, first] = heap.top();
      heap.pop();
      const Merge* m = rank_at(first);
      if (!m || m->rank != rank) continue;  // stale entry
      round.assign(1, first);
      while (!heap.empty() && heap.top().first == rank) {
        round.push_back(heap.top().second);
        heap.pop();
      }
      std::sort(round.begin(), round.end());
      round.erase(std::unique(round.begin(), round.end()), round.end());
      for (int32_t i : round) {  // left to right; an occurrence overlapping a merged one is gone
        const Merge* here = rank_at(i);
        if (!here || here->rank != rank) continue;
        const auto iu = static_cast<size_t>(i);
        const int32_t j = next[iu];
        sym[iu] = here->merged;
        alive[static_cast<size_t>(j)] = 0;
        next[iu] = next[static_cast<size_t>(j)];
        if (next[iu] >= 0) prev[static_cast<size_t>(next[iu])] = i;
        push(prev[iu]);
        push(i);
      }
    }
    std::vector<int32_t> out;
    for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)]) out.push_back(sym[static_cast<size_t>(i)]);
    return out;
  }

  std::vector<int32_t> bpe_cached(const std::string& bytes) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (auto it = cache.find(bytes); it != cache.end()) return it->second;
    }
    std::vector<int32_t> out = bpe(bytes);
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() > 200000) cache.clear();  // bounded; the reference's cache grows forever
    cache.emplace(bytes, out);
    return out;
  }

  std::vector<std::string> tokenize(const std::string& text) const {
    const std::u32string t = decode_utf8_strict(text);
    std::vector<std::string> out;
    for (const TextSegment& seg : split_on_literal_tokens(t, literals)) {
      if (seg.special >= 0) {
        out.push_back(encode_utf8(seg.text));
        continue;
      }
      for (const auto& [a, b] : gpt2_split(seg.text))
        for (int32_t s : bpe_cached(encode_utf8(seg.text.substr(a, b - a))))
          out.push_back(symbols[static_cast<size_t>(s)]);
    }
    return out;
  }

  int64_t id_of(const std::string& symbol) const {
    const auto it = encoder.find(symbol);
    return it == encoder.end() ? unk : it->second;
  }
};

RobertaBpeTokenizer::RobertaBpeTokenizer(const std::string& vocab_json, const std::string& merges_txt)
    : impl_(std::make_unique<Impl>()) {
  // bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the others map to U+0100 + n.
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    std::string s;
    append_utf8(s, printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++));
    impl_->byte_encoder[b] = s;
  }
  for (int b = 0; b < 256; ++b) impl_->intern(impl_->byte_encoder[b]);  // symbol b = byte b

  // vocab.json (json.load: a later duplicate key wins, as nlohmann's parser also does).
  {
    const std::string text = read_file(vocab_json, "vocab.json");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      throw InputError(vocab_json + ": not a RoBERTa vocab.json: not valid JSON (expected {\"token\": id, ...})");
    }
    require(j.is_object() && !j.empty(),
            vocab_json + ": not a RoBERTa vocab.json: expected a JSON object {\"token\": id, ...}");
    impl_->encoder.reserve(j.size());
    for (const auto& [k, v] : j.items()) {
      require(v.is_number_integer() && v.get<int64_t>() >= 0,
              vocab_json + ": not a RoBERTa vocab.json: the id of '" + k + "' is not a non-negative integer");
      impl_->encoder.emplace(k, v.get<int64_t>());
    }
    const auto need = [&](const char* tok) {
      const auto it = impl_->encoder.find(tok);
      require(it != impl_->encoder.end(),
              vocab_json + ": not a RoBERTa vocab.json: no '" + std::string(tok) + "' entry");
      return it->second;
    };
    impl_->bos = need("<s>");
    impl_->pad = need("<pad>");
    impl_->eos = need("</s>");
    impl_->unk = need("<unk>");
    impl_->mask = need("<mask>");
  }

  // merges.txt: read().split("\n")[1:-1] after universal-newline translation, i.e. the first line
  // (the "#version" header) and whatever follows the last "\n" are not merges; a later duplicate wins.
  {
    std::string text = read_file(merges_txt, "merges.txt");
    try {
      (void)decode_utf8_strict(text);
    } catch (const InputError& e) {
      throw InputError(merges_txt + ": not a BPE merges.txt: " + without_text_prefix(e.what()));
    }
    std::string lf;
    lf.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r') {
        lf += '\n';
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      } else {
        lf += text[i];
      }
    }
    size_t pos = lf.find('\n');
    require(pos != std::string::npos, merges_txt +
                                          ": not a BPE merges.txt: a single line (expected a header line and "
                                          "one 'first second' merge per line)");
    ++pos;
    int rank = 0;
    int64_t line_no = 2;
    impl_->merges.reserve(lf.size() / 8);
    for (size_t end; (end = lf.find('\n', pos)) != std::string::npos; pos = end + 1, ++line_no, ++rank) {
      const std::u32string line = decode_utf8_strict(lf.substr(pos, end - pos));
      std::vector<std::u32string> fields;  // str.split()
      for (size_t i = 0; i < line.size();) {
        while (i < line.size() && python_isspace(line[i])) ++i;
        const size_t s = i;
        while (i < line.size() && !python_isspace(line[i])) ++i;
        if (i > s) fields.push_back(line.substr(s, i - s));
      }
      if (fields.empty()) continue;  // the reference's () entry can never match a pair
      require(fields.size() == 2, merges_txt + ": not a BPE merges.txt: line " + std::to_string(line_no) + " has " +
                                      std::to_string(fields.size()) + " fields, expected 'first second'");
      const std::string a = encode_utf8(fields[0]), b = encode_utf8(fields[1]);
      require(impl_->encoder.count(a + b) > 0,
              merges_txt + ": line " + std::to_string(line_no) + " merges to '" + a + b + "', which " + vocab_json +
                  " does not contain: the merges and vocab files do not belong together");
      const int32_t left = impl_->intern(a), right = impl_->intern(b), merged = impl_->intern(a + b);
      impl_->merges.insert_or_assign(Impl::pair_key(left, right), Impl::Merge{rank, merged});
    }
    require(!impl_->merges.empty(), merges_txt + ": not a BPE merges.txt: no merges after the header line");
  }

  // RobertaTokenizer's special tokens: AddedTokens, only <mask> with lstrip.
  for (const char32_t* s : {U"</s>", U"<mask>", U"<pad>", U"<s>", U"<unk>"})
    impl_->literals.push_back({s, /*lstrip=*/std::u32string_view(s) == U"<mask>", /*rstrip=*/false});
}

RobertaBpeTokenizer::~RobertaBpeTokenizer() = default;

std::vector<std::string> RobertaBpeTokenizer::tokenize(const std::string& text) const { return impl_->tokenize(text); }

std::vector<int64_t> RobertaBpeTokenizer::encode(const std::string& text) const {
  const auto symbols = impl_->tokenize(text);
  std::vector<int64_t> ids;
  ids.reserve(symbols.size());
  for (const auto& s : symbols) ids.push_back(impl_->id_of(s));
  return ids;
}

TokenBatch RobertaBpeTokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_length,
                                             TextPadding padding) const {
  const auto rows = encode_text_rows(texts, [this](const std::string& t) { return encode(t); });
  return assemble_token_batch(rows, impl_->bos, impl_->eos, impl_->pad, max_length, padding);
}

int64_t RobertaBpeTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->encoder.size()); }
int64_t RobertaBpeTokenizer::bos_id() const { return impl_->bos; }
int64_t RobertaBpeTokenizer::pad_id() const { return impl_->pad; }
int64_t RobertaBpeTokenizer::eos_id() const { return impl_->eos; }
int64_t RobertaBpeTokenizer::unk_id() const { return impl_->unk; }
int64_t RobertaBpeTokenizer::mask_id() const { return impl_->mask; }

std::vector<std::string> gpt2_pretokenize(const std::string& text) {
  const std::u32string t = decode_utf8_strict(text);
  std::vector<std::string> out;
  for (const auto& [a, b] : gpt2_split(t)) out.push_back(encode_utf8(t.substr(a, b - a)));
  return out;
}

at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx) {
  const at::Tensor real = input_ids.ne(padding_idx).to(at::kLong);
  return at::cumsum(real, /*dim=*/-1).mul_(real).add_(padding_idx);
}

}  // namespace omnibind::preprocess
