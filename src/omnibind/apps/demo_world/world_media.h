// One instance of a class in each modality: a rendered image, a synthesised sound, a sampled
// point cloud, a caption. Every call draws its variation (pose, clutter, pitch jitter, noise,
// wording) from the given generator, so (class, seed) -> the same bytes everywhere.
#pragma once
#include <string>

#include "omnibind/apps/demo_world/world_rng.h"
#include "omnibind/apps/demo_world/world_spec.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::apps {

struct RenderOptions {
  int image_size = 32;            // square RGB images
  int clutter_max = 3;            // up to this many distractor blobs
  int sample_rate = 16000;
  double sound_seconds = 0.75;
  int points = 1024;
};

media::Image render_look(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options = {});
media::Audio synthesise_sound(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options = {});
media::PointCloud sample_form(const ClassSpec& spec, WorldRng& rng, const RenderOptions& options = {});

// Text sources as in the pool format: 0 describes the sound, 1 the look, 2 the 3-D shape.
enum class CaptionSource { Sound = 0, Look = 1, Shape = 2 };
// Templated caption; wording differs by source. With probability `anonymous` the class name is
// left out and only attributes are described (harder texts that need attribute knowledge).
std::string describe(const ClassSpec& spec, CaptionSource source, WorldRng& rng, double anonymous = 0.25);
// The zero-shot prompt templates ("a photo of a {}", "the sound of a {}", ...), filled with the name.
std::vector<std::string> class_prompts(const std::string& class_name);

}  // namespace omnibind::apps
