// The paired listing `omnibind zoo train --pairs` reads (docs/reference/zoo_experts.md "Paired listing"):
// JSON Lines, one item per line, any subset of the modalities plus an optional group:
//   {"audio": "a.wav", "image": "b.png", "point": "c.ply", "text": "a caption", "group": 3}
// Media values are file paths, relative ones resolved against the listing's directory; "text" is the
// text itself. Items sharing a group are positives of each other; items without one are their own.
// Blank lines and lines starting with '#' are skipped. Every problem is one InputError naming the
// listing and the line: bad JSON, not an object, an unknown field, a modality not allowed, a value of
// the wrong type, an empty text, a missing file, a group that is not an integer or a string; and for the whole listing: no
// items, fewer than two modalities, no item with two modalities, an allowed modality no item has.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/training/zoo/zoo_trainer.h"

namespace omnibind::training::zoo {

struct ZooPairItem {
  int64_t line = 0;                           // 1-based line in the listing
  std::map<std::string, std::string> values;  // modality -> resolved path (audio/image/point) or the text
  std::string group;                          // the "group" value as JSON text; "" = none given
};

struct ZooPairsListing {
  std::string path;
  std::vector<ZooPairItem> items;
  std::vector<std::string> modalities;  // present in the data, in audio/image/point/text order
};

// Parses and validates the listing; `allowed` = the modalities the expert will have.
ZooPairsListing read_zoo_pairs(const std::string& path, const std::vector<std::string>& allowed);
ZooPairsListing parse_zoo_pairs(const std::string& text, const std::string& path, const std::vector<std::string>& allowed);

// Decodes every item's media with the project's decoders and preprocesses it for `config`
// (zoo_inputs.h): absent members are zero rows marked absent; group ids are dense in first-seen
// order (given groups, then identical texts, then one per remaining item). Decoding errors are InputErrors naming the listing's line. `progress(done, total)`.
ZooPairedData load_zoo_pairs(const ZooPairsListing& listing, const experts::zoo::ZooConfig& config,
                             const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace omnibind::training::zoo
