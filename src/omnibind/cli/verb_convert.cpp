// omnibind convert: released OmniBind heads/routers + expert weights -> a model bundle directory
// (bundle.json + heads + experts), loadable by --model in embed/search/serve. Either every file by
// hand (--heads, --expert ...) or a folder of the released files (--preset base|large --from DIR,
// the table in pipeline/release_files.cpp). See docs/BUNDLE.md.
#include <unistd.h>

#include <cstdio>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/common/printable.h"
#include "omnibind/pipeline/bundle_convert.h"
#include "omnibind/pipeline/release_files.h"

namespace omnibind::cli {
namespace {

struct ConvertArgs {
  pipeline::ConvertOptions options;
  std::vector<std::string> experts, files;
  std::string out, from, binding_config;
  bool no_check = false, link = false, copy = false, no_sha256 = false;
};

int run_convert(ConvertArgs& a) {
  require(!(a.link && a.copy), "give at most one of --link and --copy");
  pipeline::ConvertOptions& o = a.options;
  if (!a.from.empty()) {
    require(!o.preset.empty(), "--from needs --preset base|large (which released files to look for)");
    require(o.heads.empty() && a.experts.empty(), "--from finds the heads and experts itself: drop --heads/--expert "
                                                  "(name a file with --file NAME=PATH instead)");
    pipeline::ReleaseRequest r;
    r.preset = o.preset;
    r.from = a.from;
    r.config = a.binding_config;
    for (auto& f : a.files) {
      auto [name, path] = pipeline::parse_file_override(f);
      require(r.files.emplace(name, path).second, "--file " + name + " given twice");
    }
    pipeline::ConvertOptions planned;
    try {
      planned = pipeline::plan_release_convert(r);
    } catch (const pipeline::MissingReleaseFiles& e) {
      for (auto& line : e.lines) std::fprintf(stderr, "omnibind convert: missing %s\n", printable_message(line).c_str());
      std::fprintf(stderr, "omnibind convert: %zu file(s) missing under %s; nothing written\n", e.lines.size(),
                   printable_message(a.from).c_str());
      return 2;
    }
    planned.layout = o.layout;
    planned.precision = o.precision;
    planned.overwrite = o.overwrite;
    planned.select = o.select;
    planned.expert_files = a.link ? "link" : a.copy ? "copy" : "reference";
    o = planned;
  } else {
    require(a.files.empty(), "--file needs --from (it overrides one file of the release folder)");
    require(!o.heads.empty(), "no heads checkpoint: give --heads CKPT and --expert ..., or --preset base|large --from DIR");
    require(!a.experts.empty(), "no experts (--expert NAME=FAMILY:WEIGHTS, one per bound space)");
    if (!a.binding_config.empty()) o.config = a.binding_config;
    for (auto& spec : a.experts) o.experts.push_back(pipeline::parse_convert_expert(spec));
    if (a.link) o.expert_files = "link";
    if (a.copy) o.expert_files = "copy";
  }
  o.check = !a.no_check;
  o.record_sha256 = !a.no_sha256;
  const bool tty = isatty(2);
  if (tty) {
    o.progress = [](const std::string& name, uint64_t done, uint64_t total) {
      std::fprintf(stderr, "\rconvert: sha256 %s %3d%% (%.1f of %.1f GB)%s", name.c_str(),
                   total ? static_cast<int>(100.0 * done / total) : 100, done / 1e9, total / 1e9, done >= total ? "\n" : "");
    };
    std::fprintf(stderr, "convert: reading %s and writing %s ...\n", o.heads.c_str(), a.out.c_str());
  }
  auto m = pipeline::convert_to_bundle(a.out, o);
  std::printf("wrote %s: %s heads (%s), %zu experts, %zu files recorded\n", a.out.c_str(),
              m.preset.empty() ? (m.binding ? m.binding->name.c_str() : "custom") : m.preset.c_str(),
              m.heads_layout.c_str(), m.experts.size(), m.files.size());
  if (!a.from.empty()) {  // what was found where (inspect shows the same, with sizes and sha256)
    for (auto& e : m.experts) {
      std::string mods;
      for (auto& x : e.modalities) mods += (mods.empty() ? " [" : ",") + x;
      if (!mods.empty()) mods += "]";
      std::printf("  %-16s %-9s %-9s %s%s\n", e.name.c_str(), e.family.c_str(), e.size.c_str(), e.weights.c_str(), mods.c_str());
    }
  }
  return 0;
}

VerbRun setup(CLI::App& sub) {
  auto a = std::make_shared<ConvertArgs>();
  auto& o = a->options;
  sub.add_option("--preset", o.preset, "base | large | full (with --from: which released files to look for)");
  sub.add_option("--from", a->from, "Folder of the released files (OmniBind README layout and/or a Hugging Face cache)");
  sub.add_option("--file", a->files,
                 "NAME=PATH: use PATH for the release file NAME (heads, WAVCAPS_PT, EVA_E14p, bpe, bert_vocab, ..., "
                 "or SPACE.config for a family config JSON); repeatable, with --from")
      ->allow_extra_args(false);  // one value per occurrence
  sub.add_option("--heads", o.heads, "OmniBind heads/routers checkpoint (.pt/.pth/.safetensors)");
  sub.add_option("--select", o.select, "Sub-dict of the checkpoint holding the state dict")->capture_default_str();
  sub.add_option("--config", a->binding_config,
                 "Binding config JSON (custom bindings; with --from it replaces the preset's binding: same space names, "
                 "other widths); default: the preset, or the heads' metadata");
  sub.add_option("--expert", a->experts,
                 "NAME=FAMILY:WEIGHTS[,size=S][,config=FILE][,bpe=FILE][,vocab=FILE]...[,modalities=a+b], one per "
                 "bound space (without --from)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_option("--out", a->out, "The bundle directory to write")->required();
  sub.add_option("--layout", o.layout, "folded (BatchNorm pre-folded, fast load) | official")->capture_default_str();
  sub.add_option("--precision", o.precision, "Default precision recorded in the bundle: auto (bf16 where the CPU has native bf16, else fp32) | fp32 | bf16")->capture_default_str();
  sub.add_flag("--reference-experts", o.reference_experts,
               "Record expert files by absolute path instead of copying (the default with --from)");
  sub.add_flag("--link", a->link, "Hard-link expert files into the bundle (refused across file systems)");
  sub.add_flag("--copy", a->copy, "Copy expert files into the bundle");
  sub.add_flag("--no-sha256", a->no_sha256, "Record sizes only (hashing tens of GB takes minutes)");
  sub.add_flag("--overwrite", o.overwrite, "Replace an existing bundle directory");
  sub.add_flag("--no-check", a->no_check, "Do not load the written bundle (experts included) to check it");
  return [a] { return run_convert(*a); };
}

REGISTER_VERB("convert", "Make a model bundle from OmniBind heads and expert weights, or from a folder of released files",
              setup);

}  // namespace
}  // namespace omnibind::cli
