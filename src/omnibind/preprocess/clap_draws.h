// Recorded CLAP random draws (fusion chunk starts, waveform crop start) per input, for replaying
// the reference's unseeded np.random choices (`--crop-draws FILE`). Two JSON layouts are read:
//   {"<input>": {"chunk_starts": [front, middle, back], "crop_start": s}, ...}     (either key optional)
//   the clap_mini fixture's inputs.json: {"audio": [{"file": ..., "name": ...,
//     "fusion_chunk_starts": [...], "waveform_crop_start": s}, ...]}           (keyed by file and name)
#pragma once
#include <map>
#include <string>

#include "omnibind/preprocess/audio_waveform.h"

namespace omnibind::preprocess {

using ClapDrawsTable = std::map<std::string, ClapDraws>;

// InputError naming `source` on invalid JSON or malformed entries (starts not 3 integers >= 0, ...).
ClapDrawsTable parse_clap_draws(const std::string& json_text, const std::string& source);
ClapDrawsTable read_clap_draws_file(const std::string& path);

// The draws for `input` (a path): exact key first, then its file name, then the file name without
// extension; nullptr when none (the deterministic defaults then apply).
const ClapDraws* find_clap_draws(const ClapDrawsTable& table, const std::string& input);

}  // namespace omnibind::preprocess
