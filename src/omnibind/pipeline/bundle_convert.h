// Making a model bundle from released files (what `omnibind convert` runs): the OmniBind heads/routers
// checkpoint (.pt/.pth/.safetensors, official layout) checked against the binding, written either
// pre-folded (BatchNorm folded into the Linear weights, so loading is an mmap; docs/BUNDLE.md) or as
// the official state dict in safetensors, plus each expert's files copied (hard-linked when possible)
// or referenced by absolute path.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "omnibind/pipeline/bundle_manifest.h"

namespace omnibind::pipeline {

struct ConvertExpert {
  std::string name, family;              // binding name, expert family
  std::string weights, config, size, bpe;  // files as given on the command line
  std::vector<std::string> modalities;
  std::vector<std::string> vocab;        // tokenizer files (vocab=FILE, repeatable)
};

// "NAME=FAMILY:WEIGHTS[,size=S][,config=FILE][,bpe=FILE][,vocab=FILE]...[,modalities=audio+text]";
// InputError naming it.
ConvertExpert parse_convert_expert(const std::string& spec);

struct ConvertOptions {
  std::string heads;         // the checkpoint
  std::string select = "auto";
  std::string preset;        // or
  std::string config;        // a binding config JSON file; neither: the heads' __metadata__.binding_config
  std::vector<ConvertExpert> experts;
  std::string layout = "folded";  // "folded" | "official"
  std::string precision = "auto"; // the manifest's default precision: fp32 | bf16 | auto (bf16 where the CPU has it natively)
  bool reference_experts = false; // keep expert files where they are (absolute paths) instead of copying
  // How expert files get into the bundle: "auto" (hard link, else copy), "reference" (absolute path,
  // nothing copied; what reference_experts = true means), "link" (hard link; InputError when the
  // file system cannot), "copy" (always a copy).
  std::string expert_files = "auto";
  bool record_sha256 = true;      // bundle.json "files": sizes always, sha256 unless false
  // Called while hashing big files (name, bytes done, bytes total); e.g. a progress line on a tty.
  std::function<void(const std::string&, uint64_t, uint64_t)> progress;
  bool overwrite = false;
  bool check = true;              // load the written bundle (experts included) and remove it if that fails
};

// Writes the bundle directory atomically; returns its manifest.
BundleManifest convert_to_bundle(const std::filesystem::path& out, const ConvertOptions& options);

}  // namespace omnibind::pipeline
