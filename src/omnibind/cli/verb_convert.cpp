// omnibind convert: released OmniBind heads/routers + expert weights -> a model bundle directory
// (bundle.json + heads + experts), loadable by --model in embed/search/serve. See docs/BUNDLE.md.
#include <unistd.h>

#include <cstdio>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/pipeline/bundle_convert.h"

namespace omnibind::cli {
namespace {

struct ConvertArgs {
  pipeline::ConvertOptions options;
  std::vector<std::string> experts;
  std::string out;
  bool no_check = false;
};

int run_convert(ConvertArgs& a) {
  for (auto& spec : a.experts) a.options.experts.push_back(pipeline::parse_convert_expert(spec));
  a.options.check = !a.no_check;
  if (isatty(2)) std::fprintf(stderr, "convert: reading %s and writing %s ...\n", a.options.heads.c_str(), a.out.c_str());
  auto m = pipeline::convert_to_bundle(a.out, a.options);
  std::printf("wrote %s: %s heads (%s), %zu experts\n", a.out.c_str(),
              m.preset.empty() ? (m.binding ? m.binding->name.c_str() : "custom") : m.preset.c_str(),
              m.heads_layout.c_str(), m.experts.size());
  return 0;
}

VerbRun setup(CLI::App& sub) {
  auto a = std::make_shared<ConvertArgs>();
  auto& o = a->options;
  sub.add_option("--heads", o.heads, "OmniBind heads/routers checkpoint (.pt/.pth/.safetensors)")->required();
  sub.add_option("--select", o.select, "Sub-dict of the checkpoint holding the state dict")->capture_default_str();
  sub.add_option("--preset", o.preset, "base | large | full");
  sub.add_option("--config", o.config, "Binding config JSON (custom bindings); default: the heads' metadata");
  sub.add_option("--expert", a->experts,
                 "NAME=FAMILY:WEIGHTS[,size=S][,config=FILE][,bpe=FILE][,modalities=a+b], one per bound space")
      ->required();
  sub.add_option("--out", a->out, "The bundle directory to write")->required();
  sub.add_option("--layout", o.layout, "folded (BatchNorm pre-folded, fast load) | official")->capture_default_str();
  sub.add_option("--precision", o.precision, "Default precision recorded in the bundle: fp32 | bf16")->capture_default_str();
  sub.add_flag("--reference-experts", o.reference_experts, "Record expert files by absolute path instead of copying");
  sub.add_flag("--overwrite", o.overwrite, "Replace an existing bundle directory");
  sub.add_flag("--no-check", a->no_check, "Do not load the written bundle (experts included) to check it");
  return [a] { return run_convert(*a); };
}

REGISTER_VERB("convert", "Make a model bundle from OmniBind heads and expert weights", setup);

}  // namespace
}  // namespace omnibind::cli
