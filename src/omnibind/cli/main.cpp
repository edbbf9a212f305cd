// omnibind <verb> [options]: the single binary. Errors in what the user gave us print one line
// "omnibind <verb>: <message>" and exit 2; internal failures exit 1.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/common/printable.h"
#include "omnibind/distributed/distributed_context.h"

namespace omnibind::cli {
std::vector<VerbInfo>& verb_registry() {
  static std::vector<VerbInfo> verbs;
  return verbs;
}
}  // namespace omnibind::cli

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  using namespace omnibind;
  CLI::App app{"OmniBind: one embedding space for 3D point clouds, audio, images and text", "omnibind"};
  app.set_version_flag("--version", std::string("omnibind ") + OMNIBIND_VERSION);
  app.require_subcommand(1);
  auto& verbs = cli::verb_registry();
  std::sort(verbs.begin(), verbs.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, cli::VerbRun>> runs;
  for (auto& v : verbs) {
    CLI::App* sub = app.add_subcommand(v.name, v.description);
    runs.emplace_back(sub, v.setup(*sub));
  }
  std::string verb_name = "omnibind";
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) verb_name = "omnibind " + sub->get_name();
    std::fprintf(stderr, "%s: %s (see --help)\n", verb_name.c_str(), e.what());
    return 2;
  }
  for (auto& [sub, run] : runs) {
    if (!sub->parsed()) continue;
    verb_name = "omnibind " + sub->get_name();
    try {
      return run();
    } catch (const InputError& e) {
      std::fprintf(stderr, "%s: %s\n", verb_name.c_str(), printable_message(e.what()).c_str());
      return 2;
    } catch (const distributed::PeerError& e) {  // another rank failed (docs/SCALING.md): not this rank's bug
      std::fprintf(stderr, "%s: %s\n", verb_name.c_str(), printable_message(e.what()).c_str());
      return 1;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      // libtorch messages carry a C++ backtrace after the first line: keep the first line only.
      msg = printable_message(msg.substr(0, msg.find('\n')));
      std::fprintf(stderr, "%s: internal error: %s\n", verb_name.c_str(), msg.c_str());
      return 1;
    }
  }
  return 2;
}
