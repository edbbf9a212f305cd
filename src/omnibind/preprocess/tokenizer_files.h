// Picking a text expert's tokenizer files out of the user's `--vocab` list
// (ExpertOptions::vocab_files) by content, falling back on the file name.
#pragma once
#include <string>
#include <vector>

namespace omnibind::preprocess {

enum class TokenizerFileKind {
  kWordPieceVocab,  // BERT vocab.txt: one token per line, [PAD]/[CLS]/... near the top
  kBpeVocabJson,    // GPT-2/RoBERTa vocab.json: a JSON object
  kBpeMerges,       // GPT-2/RoBERTa merges.txt: "#version" header, or named *merges*.txt
  kOther,           // anything else (a SentencePiece model, ...)
};

// From the first bytes of the file (InputError naming it when it cannot be read).
TokenizerFileKind tokenizer_file_kind(const std::string& path);

// The one WordPiece vocab.txt among `files`. InputError "<family>: ..." naming what is missing
// (none given) or ambiguous (two given).
std::string pick_wordpiece_vocab(const std::vector<std::string>& files, const std::string& family);

struct BpeFiles {
  std::string vocab_json;
  std::string merges_txt;
};
// The one vocab.json and the one merges.txt among `files`; InputError "<family>: ..." otherwise.
BpeFiles pick_bpe_files(const std::vector<std::string>& files, const std::string& family);

}  // namespace omnibind::preprocess
