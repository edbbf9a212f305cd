// The demo's one-file HTML report (no external assets: SVG inline, media as data URIs): the world,
// the experts, the evaluation table, embedding maps per modality coloured by class, router weights
// per input family, the any-to-any queries with previews of what came back, and composed queries.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "omnibind/apps/demo/demo_compose.h"
#include "omnibind/apps/demo/demo_pools.h"
#include "omnibind/apps/demo/demo_search.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/evaluation/eval_set.h"
#include "omnibind/evaluation/eval_table.h"

namespace omnibind::apps {

struct DemoReport {
  const WorldSpec* world = nullptr;
  const std::vector<DemoSpace>* spaces = nullptr;
  const evaluation::EvalTable* table = nullptr;
  const evaluation::EvalSet* eval = nullptr;
  const binding::OmniBindModel* model = nullptr;
  const std::vector<DemoQuery>* queries = nullptr;
  std::vector<std::pair<std::string, double>> timings;  // stage -> seconds
  std::string command;                                  // how to reproduce
  const std::vector<ComposeExample>* compositions = nullptr;  // composable queries (optional section)
  std::string localisation_html;                        // demo_locate.h's section (appended when set)
};

std::string render_demo_report(const DemoReport& report);

}  // namespace omnibind::apps
