#include "omnibind/apps/demo/demo_lineup.h"

#include <algorithm>

namespace omnibind::apps {
namespace zoo = experts::zoo;

bool DemoExpert::covers(const std::string& modality) const {
  return std::find(modalities.begin(), modalities.end(), modality) != modalities.end();
}

namespace {

// Small towers: the world's images are 32x32 RGB (colour is a class attribute), sounds 0.75 s.
zoo::ZooConfig small_config(const std::vector<std::string>& modalities, int64_t dim, const std::string& key) {
  auto c = zoo::default_zoo_config(modalities, dim, key);
  if (c.audio) {
    c.audio->channels = {8, 16, 32};
    c.audio->hidden = 64;
  }
  if (c.image) {
    c.image->size = 32;
    c.image->channels_in = 3;
    c.image->channels = {8, 16, 32};
    c.image->hidden = 64;
  }
  if (c.point) {
    c.point->points = 256;
    c.point->widths = {32, 64, 128};
    c.point->hidden = 64;
  }
  if (c.text) {
    c.text->buckets = 2048;
    c.text->width = 64;
    c.text->hidden = 64;
  }
  return c;
}

std::vector<int> class_range(int begin, int end) {
  std::vector<int> r;
  for (int c = begin; c < end; ++c) r.push_back(c);
  return r;
}

}  // namespace

std::vector<DemoExpert> demo_lineup(int classes) {
  const int split = (classes * 3 + 4) / 5;  // ~60%: the classes an uneven expert knows well
  std::vector<DemoExpert> lineup;
  lineup.push_back({"IT", "EVA-CLIP (image-text backbone)", {"image", "text"}, {CaptionSource::Look},
                    class_range(0, classes), 1.0, 0.05, small_config({"image", "text"}, 64, "IT")});
  lineup.push_back({"AT", "CLAP (audio-text)", {"audio", "text"}, {CaptionSource::Sound},
                    class_range(0, split), 0.2, 0.05, small_config({"audio", "text"}, 64, "AT")});
  lineup.push_back({"PIT", "Uni3D (3D-image-text)", {"point", "image", "text"}, {CaptionSource::Shape, CaptionSource::Look},
                    class_range(0, classes), 1.0, 0.1, small_config({"point", "image", "text"}, 64, "PIT")});
  lineup.push_back({"AIT", "ImageBind (audio-image-text)", {"audio", "image", "text"},
                    {CaptionSource::Sound, CaptionSource::Look}, class_range(classes - split, classes), 0.2, 0.15,
                    small_config({"audio", "image", "text"}, 48, "AIT")});
  return lineup;
}

}  // namespace omnibind::apps
