// The one interface every expert (ImageBind, Uni3D, CLAP, ..., precomputed pools) sits behind.
// Upstream layers (binding, training, retrieval, serving) only ever see unit-norm embeddings
// keyed by (expert name, modality).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace omnibind::experts {

enum class Modality { Audio, Image, Text, Point };

std::string_view modality_name(Modality m);       // "audio", "image", "text", "point"
Modality parse_modality(std::string_view name);    // InputError listing the valid names

// One item to embed: a file path, raw file bytes (with an optional name hint such as "x.wav"), or
// a text string (text modality).
struct MediaInput {
  std::string path;
  std::string bytes;
  std::string name_hint;
  std::string text;

  static MediaInput from_path(std::string p) { MediaInput m; m.path = std::move(p); return m; }
  static MediaInput from_text(std::string t) { MediaInput m; m.text = std::move(t); return m; }
  static MediaInput from_bytes(std::string b, std::string hint = "") {
    MediaInput m; m.bytes = std::move(b); m.name_hint = std::move(hint); return m;
  }
  // What to call this input in error messages.
  std::string describe() const { return !path.empty() ? path : !name_hint.empty() ? name_hint : "<input>"; }
};

// Implementations must be safe to call from several threads at once (no mutable state in
// preprocess/encode; weights are read-only, typically mmap'ed).
class Expert {
 public:
  virtual ~Expert() = default;
  virtual const std::string& name() const = 0;
  virtual std::vector<Modality> modalities() const = 0;
  virtual int64_t dim() const = 0;
  // The short upper-case name of the embedding space in files ("IB", "UNI3D"): the tensor key
  // `omnibind embed` writes and the precomputed expert serves. Default: name() upper-cased.
  virtual std::string key() const;
  bool covers(Modality m) const;

  // Deterministic: one input -> the model's input tensor for one item (no batch dimension).
  // InputError naming the input on malformed media, unsupported modality, etc.
  virtual at::Tensor preprocess(Modality m, const MediaInput& input) const = 0;

  // Batched: a stack of preprocess() outputs [B, ...] -> unit-norm embeddings [B, dim] (float32).
  virtual at::Tensor encode(Modality m, const at::Tensor& batch) const = 0;
};

// How to build an expert: weights file, optional JSON config, size name, precision, extra files.
struct ExpertOptions {
  std::string weights;            // .pth/.pt/.safetensors (or a pool directory for "precomputed")
  std::string config;             // optional JSON config overriding the built-in one
  std::string size;               // e.g. "huge" (imagebind), "giant"/"tiny" (uni3d)
  std::string precision = "fp32"; // fp32 | bf16
  std::string bpe_vocab;          // text experts: the BPE vocabulary file
  // Tokenizer files of text experts that need more than a CLIP BPE file (BERT vocab.txt, RoBERTa
  // vocab.json + merges.txt, a SentencePiece model): `--vocab`, repeatable; each family picks its
  // files by name or content and names what is missing.
  std::vector<std::string> vocab_files;
  // Recorded random draws for experts whose reference crops long inputs at random (clap: fusion
  // chunk starts and waveform crop per clip; `--crop-draws`). Empty: the documented deterministic rule.
  std::string crop_draws;
  // Centre-crop offset rule of shortest-side image experts that offer a choice (eva_clip_18b:
  // "round", the reference's torchvision CenterCrop, default; "floor", transformers'
  // CLIPImageProcessor, what OmniBind runs; `--image-crop`). Empty: the family's default.
  std::string image_crop;
  int threads = 0;                // 0 = libtorch's default
};

using ExpertFactory = std::function<std::unique_ptr<Expert>(const ExpertOptions&)>;

// The registry the CLI, training, evaluation and server use to find experts by name.
void register_expert(const std::string& name, const std::string& description, ExpertFactory factory);
std::unique_ptr<Expert> create_expert(const std::string& name, const ExpertOptions& options);  // InputError if unknown
std::vector<std::pair<std::string, std::string>> list_experts();  // (name, description), sorted

}  // namespace omnibind::experts
