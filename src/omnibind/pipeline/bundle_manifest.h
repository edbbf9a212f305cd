// The manifest of a model bundle (`bundle.json`): which OmniBind heads, which binding config and which
// expert feeds each bound space. Paths are relative to the bundle directory (absolute paths are
// accepted for weights kept elsewhere, e.g. a shared multi-GB expert checkpoint).
//   {"format":"omnibind-bundle","version":1,
//    "binding": <BindingConfig JSON> | {"preset":"base|large|full"},   (optional when the heads file's
//                                        __metadata__.binding_config holds it)
//    "heads": "heads.safetensors",  "heads_layout": "official" | "folded",  "precision": "fp32"|"bf16"|"auto",
//    "experts": [{"name":"CLAP", "family":"zoo", "weights":"experts/clap.safetensors",
//                 "config":"", "size":"", "bpe":"", "vocab":[], "modalities":["audio","text"]}]}
// "vocab" lists tokenizer files (ExpertOptions::vocab_files: BERT vocab.txt, RoBERTa vocab.json +
// merges.txt, SentencePiece models).
// Optional "files": [{"path": <as the entries/heads name it>, "bytes": N, "sha256": "<hex>"}] records
// every file the bundle uses (what `convert` writes); loading compares the sizes (cheap), `inspect
// --verify` re-hashes. Bundles without it load as before.
// An expert entry's optional "modalities" restricts it to some of what its family embeds; the same
// binding name may appear in several entries when they cover different modalities.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "omnibind/binding/binding_config.h"

namespace omnibind::pipeline {

struct BundleExpert {
  std::string name;    // the binding-config expert it feeds ("CLAP_G", "IB", ...)
  std::string family;  // experts::create_expert name ("zoo", "imagebind", "uni3d", "precomputed")
  std::string weights, config, size, bpe;  // as written in the manifest (relative or absolute)
  std::vector<std::string> modalities;     // empty = every modality the family embeds
  std::vector<std::string> vocab;          // tokenizer files (relative or absolute), ExpertOptions::vocab_files
};

// One file the bundle uses, as recorded when it was made.
struct BundleFileRecord {
  std::string path;  // as written in the manifest (relative to the bundle, or absolute)
  uint64_t bytes = 0;
  std::string sha256;  // lower-case hex; "" when not recorded
};

struct BundleManifest {
  std::string preset;               // "base" | "large" | "full", or "" when `binding` is set/absent
  std::optional<binding::BindingConfig> binding;  // custom binding; neither -> from the heads' metadata
  std::string heads = "heads.safetensors";
  std::string heads_layout = "official";  // "folded": BatchNorm already folded (see docs/BUNDLE.md)
  std::string precision;  // "fp32" | "bf16" | "auto"; "" (absent) = "auto": omnibind::default_precision()
  std::vector<BundleExpert> experts;
  std::vector<BundleFileRecord> files;  // optional records (sizes, sha256)
};

inline constexpr const char* kBundleManifestFile = "bundle.json";

// InputError "<source>: field 'experts[2].family' ..." on anything malformed.
BundleManifest parse_bundle_manifest(const std::string& json_text, const std::string& source);
std::string bundle_manifest_to_json(const BundleManifest& manifest);

// A manifest path on disk: relative paths are taken from the bundle directory.
std::filesystem::path bundle_file_path(const std::filesystem::path& dir, const std::string& path);

// Compares every recorded file's size with the file on disk: InputError "<file>: 1234 bytes, but
// <source> recorded 5678 when the bundle was made (replaced or truncated?...)" for the first that
// differs, "<file>: missing ..." for one that is gone. Cheap (no reading).
void check_recorded_sizes(const std::filesystem::path& dir, const BundleManifest& manifest, const std::string& source);

}  // namespace omnibind::pipeline
