#define PCRE2_CODE_UNIT_WIDTH 8
#include "omnibind/preprocess/clip_tokenizer.h"

#include <ATen/ATen.h>
#include <pcre2.h>
#include <zlib.h>

#include <limits>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "omnibind/common/error.h"
#include "omnibind/preprocess/clip_text_clean.h"

namespace omnibind::preprocess {
namespace {

// The split pattern of CLIP's SimpleTokenizer (Python `regex`, IGNORECASE, Unicode classes),
// starting with the two special tokens as the family spells them.
constexpr const char* kPatternTail = R"(|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";

std::string gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  require(f != nullptr, path + ": cannot open the BPE merges file");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  const std::string err = msg ? msg : "";
  gzclose(f);
  require(n == 0 && (errnum == Z_OK || errnum == Z_STREAM_END), path + ": corrupt gzip data (" + err + ")");
  return out;
}

std::string utf8_of(char32_t cp) { return encode_utf8(std::u32string(1, cp)); }

}  // namespace

struct ClipTokenizer::Impl {
  std::string byte_encoder[256];                     // byte -> its printable stand-in (UTF-8)
  std::unordered_map<std::string, int64_t> encoder;  // BPE symbol -> id
  std::unordered_map<std::string, int> ranks;        // "first second" -> merge rank
  std::string sot, eot;                              // the special tokens' spellings
  pcre2_code* re = nullptr;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;  // token -> ids

  ~Impl() {
    if (re) pcre2_code_free(re);
  }

  // BPE of one pre-token (already mapped byte-wise), as SimpleTokenizer.bpe: repeatedly merge every
  // occurrence of the lowest-ranked adjacent pair, scanning left to right.
  std::vector<int64_t> bpe(const std::string& token_bytes) const {
    std::vector<std::string> word;
    for (unsigned char b : token_bytes) word.push_back(byte_encoder[b]);
    word.back() += "</w>";
    while (word.size() > 1) {
      int best = std::numeric_limits<int>::max();
      size_t best_i = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = ranks.find(word[i] + " " + word[i + 1]);
        if (it != ranks.end() && it->second < best) {
          best = it->second;
          best_i = i;
        }
      }
      if (best == std::numeric_limits<int>::max()) break;
      const std::string first = word[best_i], second = word[best_i + 1];
      std::vector<std::string> merged;
      merged.reserve(word.size());
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word.swap(merged);
    }
    std::vector<int64_t> ids;
    ids.reserve(word.size());
    for (const auto& w : word) ids.push_back(encoder.at(w));
    return ids;
  }

  std::vector<int64_t> token_ids(const std::string& token) const {
    if (token == sot) return {kSot};
    if (token == eot) return {kEot};
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (auto it = cache.find(token); it != cache.end()) return it->second;
    }
    std::vector<int64_t> ids = bpe(token);
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() > 200000) cache.clear();  // bounded; the reference's cache grows forever
    cache.emplace(token, ids);
    return ids;
  }
};

ClipTokenizer::ClipTokenizer(const std::string& bpe_path, Specials specials) : impl_(std::make_unique<Impl>()) {
  impl_->sot = specials == Specials::OpenClip ? "<start_of_text>" : "<|startoftext|>";
  impl_->eot = specials == Specials::OpenClip ? "<end_of_text>" : "<|endoftext|>";
  // bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the rest map to 256 + n.
  std::vector<int> order;
  std::vector<char32_t> stand_in(256, 0);
  for (int b = 0; b < 256; ++b)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
      order.push_back(b);
      stand_in[b] = static_cast<char32_t>(b);
    }
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (!stand_in[b] && !((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
      order.push_back(b);
      stand_in[b] = static_cast<char32_t>(256 + n++);
    }
  for (int b = 0; b < 256; ++b) impl_->byte_encoder[b] = utf8_of(stand_in[b]);

  int64_t id = 0;
  for (int b : order) impl_->encoder[impl_->byte_encoder[b]] = id++;
  for (int b : order) impl_->encoder[impl_->byte_encoder[b] + "</w>"] = id++;

  // merges = lines[1 : 49152 - 256 - 2 + 1], each "first second".
  const std::string text = gunzip_file(bpe_path);
  constexpr int kMerges = 49152 - 256 - 2;
  impl_->ranks.reserve(kMerges);
  impl_->encoder.reserve(49408);
  size_t pos = text.find('\n');  // skip the "#version" header line
  pos = pos == std::string::npos ? text.size() : pos + 1;
  int rank = 0;
  while (rank < kMerges && pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    const size_t sp = line.find(' ');
    require(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                line.find_first_of(" \t\r", sp + 1) == std::string_view::npos,
            bpe_path + ": malformed merge on line " + std::to_string(rank + 2) + ", expected two symbols");
    const std::string_view a = line.substr(0, sp), b = line.substr(sp + 1);
    std::string key;
    key.reserve(line.size());
    key.append(a).append(" ").append(b);
    impl_->ranks.emplace(std::move(key), rank++);
    std::string joined;
    joined.reserve(line.size() - 1);
    joined.append(a).append(b);
    impl_->encoder.emplace(std::move(joined), id++);
  }
  require(rank == kMerges, bpe_path + ": has " + std::to_string(rank) + " merges, expected " + std::to_string(kMerges));
  impl_->encoder[impl_->sot] = id++;
  impl_->encoder[impl_->eot] = id++;
  require(id == 49408 && impl_->encoder.size() == 49408, bpe_path + ": vocabulary is not the 49408 CLIP symbols");

  int errcode = 0;
  PCRE2_SIZE erroff = 0;
  // Regex-escape the specials' '|' (the only metacharacter in either spelling).
  auto escaped = [](const std::string& t) {
    std::string e;
    for (char ch : t) e += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return e;
  };
  const std::string pattern = escaped(impl_->sot) + "|" + escaped(impl_->eot) + kPatternTail;
  impl_->re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &errcode, &erroff, nullptr);
  if (!impl_->re) throw std::runtime_error("CLIP tokenizer: split pattern does not compile");
}

ClipTokenizer::~ClipTokenizer() = default;

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  const std::string clean = clip_clean_text(text);
  std::vector<int64_t> ids;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->re, nullptr);
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } free_md{md};
  PCRE2_SIZE pos = 0;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(clean.data());
  while (pos < clean.size()) {
    const int rc = pcre2_match(impl_->re, subject, clean.size(), pos, 0, md, nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH: only whitespace is left
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // cannot happen with this pattern; avoid looping forever anyway
      ++pos;
      continue;
    }
    const auto tok = impl_->token_ids(clean.substr(ov[0], ov[1] - ov[0]));
    ids.insert(ids.end(), tok.begin(), tok.end());
    pos = ov[1];
  }
  return ids;
}

at::Tensor ClipTokenizer::tokenize(const std::vector<std::string>& texts, int64_t context) const {
  require(context >= 2, "tokenize: context length must be at least 2, got " + std::to_string(context));
  at::Tensor out = at::zeros({static_cast<int64_t>(texts.size()), context}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (size_t r = 0; r < texts.size(); ++r) {
    std::vector<int64_t> row{kSot};
    const auto ids = encode(texts[r]);
    row.insert(row.end(), ids.begin(), ids.end());
    if (static_cast<int64_t>(row.size()) > context - 1) row.resize(static_cast<size_t>(context - 1));
    row.push_back(kEot);
    std::copy(row.begin(), row.end(), o + static_cast<int64_t>(r) * context);
  }
  return out;
}

}  // namespace omnibind::preprocess
