// The files of the released OmniBind presets, as data: for every bound space of Base, Large and Full, the
// expert family and size that embed it, the files it needs (weights, tokenizer), where they lie in
// a folder laid out as the OmniBind README tells users to download them, and where the reference
// gets each one. `omnibind convert --preset base|large --from DIR` runs plan_release_convert() to
// turn such a folder into ConvertOptions (see docs/BUNDLE.md, "From the released files").
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/pipeline/bundle_convert.h"

namespace omnibind::pipeline {

struct ReleaseFile {
  std::string name;                    // the table name, for --file NAME=PATH ("heads", "WAVCAPS_PT", "bpe", ...)
  std::string kind;                    // "heads" | "weights" | "tokenizer"
  std::vector<std::string> paths;      // release-layout paths under --from, in search order
  std::vector<std::string> hub_repos;  // Hugging Face hub repos holding it ("apple/DFN5B-CLIP-ViT-H-14"), in order
  std::vector<std::string> hub_files;  // its names inside those repos, in order of preference
  std::string source;                  // where the reference gets it (one line)
};

struct ReleaseSpace {
  std::string name;    // the binding's expert name ("WAVCAPS_PT", "UNI3D_L", ...)
  std::string family;  // the registered expert that embeds it
  std::string size;    // that family's --size
  std::string weights;             // ReleaseFile name of its weights
  std::string bpe;                 // ReleaseFile name passed as the expert's BPE file, or ""
  std::vector<std::string> vocab;  // ReleaseFile names passed as its --vocab files
  // The space whose expert embeds this space's image and text inputs ("EVA_E14p" for the Uni3D
  // spaces: OmniBind's Uni3D.emb_images/emb_texts call the EVA_E14p model), or "".
  std::string image_text_from;
};

struct ReleaseTable {
  std::string preset;  // "base" | "large" | "full"
  std::vector<ReleaseFile> files;
  std::vector<ReleaseSpace> spaces;

  const ReleaseFile* file(const std::string& name) const;
  const ReleaseSpace* space(const std::string& name) const;
  // Spaces using file `name` (as weights, tokenizer or image/text source), "heads" -> {"heads"}.
  std::vector<std::string> users(const std::string& name) const;
  // Names --file accepts: every file's name, then "<SPACE>.config" for every space.
  std::vector<std::string> file_names() const;
};

// "base" | "large" | "full" (case-insensitive; full = large + EVA_18B, expert eva_clip_18b); InputError otherwise.
ReleaseTable release_table(const std::string& preset);

// Where `file` lies under `from`, or "" when nowhere. Search order (first hit wins):
//  1. each of file.paths under `from` (the OmniBind release layout, e.g. checkpoints/wavcaps/...);
//  2. for hub files, for each repo ORG/NAME and each hub file F:
//     a. the Hugging Face cache: from/models--ORG--NAME/snapshots/*/F, then from/hub/models--...;
//        the snapshot refs/main names wins, else the only snapshot holding F (InputError when several
//        do and refs/main names none of them);
//     b. from/ORG/NAME/F, then from/NAME/F (a plain download or `git clone` of the repo).
std::string find_release_file(const std::filesystem::path& from, const ReleaseFile& file);

// Every place find_release_file() looks, in order, for messages and docs ("<hub cache>" entries
// shortened).
std::vector<std::string> release_search_paths(const ReleaseFile& file);

// Thrown when files are missing: `lines` has one line per missing file (what, who needs it, where the
// reference gets it); what() is the first line plus the count.
class MissingReleaseFiles : public InputError {
 public:
  MissingReleaseFiles(const std::string& what, std::vector<std::string> lines)
      : InputError(what), lines(std::move(lines)) {}
  std::vector<std::string> lines;
};

struct ReleaseRequest {
  std::string preset;  // base | large
  std::string from;    // the folder
  std::map<std::string, std::string> files;  // --file NAME=PATH: a table name or "<SPACE>.config"
  std::string config;  // binding JSON replacing the preset's binding (same space names, other widths)
};

// "NAME=PATH" -> (NAME, PATH); InputError naming the argument.
std::pair<std::string, std::string> parse_file_override(const std::string& arg);

// The conversion the folder allows: every needed file located (else MissingReleaseFiles listing
// them all), every weights file's family recognised from its keys and checked against its slot, the
// heads recognised as OmniBind heads (InputError naming the file and both families; a truncated or
// unreadable file is one line naming it). Nothing is written. The result's experts hold one entry
// per space (plus, for each Uni3D space whose binding covers image/text, an entry of its
// image_text_from space's expert on the same files, restricted to those modalities).
ConvertOptions plan_release_convert(const ReleaseRequest& request);

}  // namespace omnibind::pipeline
