// The "wavcaps" expert: audio and text into a WavCaps HTSAT-BERT space, as OmniBind's
// experts.WavCaps (emb_audios / emb_texts). One class, three released checkpoints chosen by --size
// (pt | ft_aud | ft_clo -> keys WAVCAPS_PT | WAVCAPS_FT_aud | WAVCAPS_FT_clo).
//
// preprocess(audio) = librosa.load(sr=32000, mono) with libsoxr HQ, zero-pad / keep the first 10 s,
//   then the torchlibrosa log-mel with the checkpoint's matrices: float32 [T = 1001, F = 64].
// preprocess(text)  = BERT WordPiece (bert-base-uncased vocab.txt from --vocab), [CLS] + at most 28
//   pieces + [SEP], padded to max_length 30: int64 [2, 30] = (input_ids, attention_mask).
// encode(audio, [B, T, F]) -> bn0, HTSAT, audio_proj, L2, L2: [B, E] unit rows.
// encode(text, [B, 2, 30]) -> in groups of 8 rows (OmniBind's text batches), each group cut to its
//   longest row (padding='longest'), BERT [CLS], text_proj, L2, L2: [B, E]. Stacking the texts in
//   input order and encoding them together reproduces emb_texts' batches exactly.
#pragma once
#include <memory>

#include "omnibind/experts/expert.h"

namespace omnibind::experts {

std::unique_ptr<Expert> make_wavcaps_expert(const ExpertOptions& options);
void register_wavcaps_expert();

}  // namespace omnibind::experts
