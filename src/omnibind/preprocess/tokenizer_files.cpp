#include "omnibind/preprocess/tokenizer_files.h"

#include <fstream>

#include "omnibind/common/error.h"

namespace omnibind::preprocess {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string joined(const std::vector<std::string>& files) {
  if (files.empty()) return "none";
  std::string out;
  for (const auto& f : files) out += (out.empty() ? "" : ", ") + f;
  return out;
}

std::string pick_one(const std::vector<std::string>& files, TokenizerFileKind kind, const std::string& family,
                     const std::string& what) {
  std::vector<std::string> hits;
  for (const auto& f : files)
    if (tokenizer_file_kind(f) == kind) hits.push_back(f);
  require(!hits.empty(),
          family + ": needs " + what + " (give it with --vocab); tokenizer files given: " + joined(files));
  require(hits.size() == 1, family + ": more than one " + what + " given: " + joined(hits));
  return hits.front();
}

}  // namespace

TokenizerFileKind tokenizer_file_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path + ": cannot open the tokenizer file");
  std::string head(8192, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.rfind("\xEF\xBB\xBF", 0) == 0) head.erase(0, 3);
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && head[first] == '{') return TokenizerFileKind::kBpeVocabJson;
  const std::string name = base_name(path);
  if (head.rfind("#version", 0) == 0 || (name.find("merges") != std::string::npos && ends_with(name, ".txt")))
    return TokenizerFileKind::kBpeMerges;
  if (head.find("\n[CLS]") != std::string::npos || head.find("[PAD]") == 0 || head.find("[CLS]") == 0 ||
      (ends_with(name, ".txt") && head.find('\0') == std::string::npos && !head.empty()))
    return TokenizerFileKind::kWordPieceVocab;
  return TokenizerFileKind::kOther;
}

std::string pick_wordpiece_vocab(const std::vector<std::string>& files, const std::string& family) {
  return pick_one(files, TokenizerFileKind::kWordPieceVocab, family, "BERT's WordPiece vocab.txt");
}

BpeFiles pick_bpe_files(const std::vector<std::string>& files, const std::string& family) {
  BpeFiles out;
  out.vocab_json = pick_one(files, TokenizerFileKind::kBpeVocabJson, family, "the BPE vocab.json");
  out.merges_txt = pick_one(files, TokenizerFileKind::kBpeMerges, family, "the BPE merges.txt");
  return out;
}

}  // namespace omnibind::preprocess
