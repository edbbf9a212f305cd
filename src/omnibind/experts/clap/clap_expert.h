// The "clap" expert: audio and text into a LAION-CLAP space, as OmniBind's experts.CLAP
// (get_audio_embedding_from_filelist / get_text_embedding, each normalised again).
//   --size fusion -> key CLAP_G (HTSAT-tiny + AFF fusion), --size base -> key CLAP_M (HTSAT-base);
//   without --size the checkpoint decides (a fusion checkpoint has patch_embed.mel_conv2d).
//
// preprocess(audio): librosa.load(sr=48000) with libsoxr HQ, int16 round trip, then
//   fusion: mel_fusion [4, 1001, 64] (torchaudio HTK log-mel; global + 3 chunks) and the `longer`
//           flag, packed as float32 [4, 1002, 64]: frames 0..1000 = mel_fusion, frame 1001 of
//           channel 0 = the flag (all 1.0 when longer, else 0.0), other channels' frame 1001 = 0;
//   base:   the 480000-sample waveform (repeatpad or crop) -> the model's torchlibrosa log-mel
//           with the checkpoint's matrices: float32 [1001, 64].
//   Clips over 10 s: the reference draws chunk starts / crop starts at random (unseeded np.random);
//   we use the deterministic rule of preprocess/audio_waveform.h (middle of each chunk range,
//   centred crop) unless the draws table (preprocess/clap_draws.h) names the clip.
// preprocess(text): RoBERTa byte-level BPE (--vocab vocab.json --vocab merges.txt), <s> + at most
//   75 tokens + </s>, padded with <pad> to 77: int64 [2, 77] = (input_ids, attention_mask).
// encode(audio | text, stacked preprocess outputs) -> unit rows [B, 512].
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"
#include "omnibind/preprocess/clap_draws.h"

namespace omnibind::experts {

// options.crop_draws (a JSON file, see preprocess/clap_draws.h) is read when set; `draws` (library
// callers: recorded draws keyed by input path or file name) is used when the options name no file.
std::unique_ptr<Expert> make_clap_expert(const ExpertOptions& options, preprocess::ClapDrawsTable draws = {});
void register_clap_expert();

}  // namespace omnibind::experts
