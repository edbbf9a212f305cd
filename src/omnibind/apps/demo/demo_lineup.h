// The demo's expert spaces: small zoo experts that play the roles of OmniBind's real experts, each
// deliberately imperfect in its own way (which modalities it embeds, which captions it learned from,
// which classes it saw plenty of, how noisy its pairs were), so that binding and routing have
// something to gain over any single one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "omnibind/apps/demo_world/world_media.h"
#include "omnibind/experts/zoo/zoo_config.h"

namespace omnibind::apps {

struct DemoExpert {
  std::string key;                          // the space's name in pools, bindings and bundles ("AT")
  std::string like;                         // the real expert it stands in for, for the report
  std::vector<std::string> modalities;      // audio / image / point / text
  std::vector<CaptionSource> captions;      // caption families it is trained on
  std::vector<int> strong_classes;          // classes it sees all its paired examples of
  double weak_share = 1.0;                  // share of paired examples kept for the other classes
  double caption_noise = 0.0;               // probability that an example's caption names another class
  experts::zoo::ZooConfig config;
  bool covers(const std::string& modality) const;
};

// The lineup for a world of `classes` classes: IT (image-text, the backbone), AT (audio-text), PIT
// (3D-image-text) and AIT (audio-image-text, weaker, like ImageBind). The first entry is the backbone.
std::vector<DemoExpert> demo_lineup(int classes);

}  // namespace omnibind::apps
