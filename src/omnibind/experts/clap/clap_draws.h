// Recorded random draws for LAION-CLAP's long clips. The reference draws, unseeded, the three
// fusion chunk starts (np.random.choice per third of the possible starts) and the waveform crop
// start (np.random.randint) of every clip longer than 10 s, so its embeddings of such clips are
// random. We are deterministic by default (audio_waveform.h: middle of each range, centred crop)
// and replay given draws instead where a table names the clip: for parity with a recorded run or
// to reproduce a particular reference call.
//
// File format (JSON), either
//   {"clip.wav": {"chunk_starts": [47, 167, 206], "crop_start": 60620}, ...}
// or the fixtures' inputs.json: {"audio": [{"file": "clip.wav", "fusion_chunk_starts": [...],
//   "waveform_crop_start": N}, ...]}.
// Both fields are optional per clip. A clip is looked up by its path as given, then by its file
// name (or the name hint of byte inputs).
#pragma once
#include <map>
#include <string>

#include "omnibind/experts/expert.h"
#include "omnibind/preprocess/audio_waveform.h"

namespace omnibind::experts::clap {

struct ClapDrawsTable {
  std::map<std::string, preprocess::ClapDraws> by_name;

  bool empty() const { return by_name.empty(); }
  // The draws for an input, or the empty draws (= deterministic defaults).
  preprocess::ClapDraws find(const MediaInput& input) const;
};

// InputError naming the file on unreadable/invalid JSON or malformed entries.
ClapDrawsTable read_clap_draws_file(const std::string& path);

}  // namespace omnibind::experts::clap
