// pytorchvideo's ConstantClipsPerVideoSampler as ImageBind drives it, in exact rational arithmetic:
// latest start L = Fraction(max(duration - clip_duration, 0)) with duration = n / rate as a double,
// clip k starts at k * L / (clips - 1), ends clip_duration later; ImageBind slices
// [int(start * rate), int(end * rate)) (truncation of the exact rational).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace omnibind::preprocess {

// Sample bounds [start, end) per clip; end may exceed num_samples (the slice is then shorter).
std::vector<std::pair<int64_t, int64_t>> constant_clip_bounds(int64_t num_samples, int sample_rate,
                                                              int clip_seconds, int clips_per_video);

}  // namespace omnibind::preprocess
