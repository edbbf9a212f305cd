// The demo world: deterministic, decodable by the project's own media readers, distinct classes.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "omnibind/apps/demo_world/world_files.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"
#include "testing/test_support.h"

namespace omnibind::apps {
namespace {
namespace fs = std::filesystem;

TEST(DemoWorld, SpecIsDeterministicAndUniquePerModality) {
  const WorldSpec a = make_world_spec(12, 7), b = make_world_spec(12, 7), c = make_world_spec(12, 8);
  std::set<std::tuple<int, int, int>> looks;
  std::set<std::tuple<int, int, int, int>> sounds;
  std::set<std::pair<int, int>> forms;
  bool differs = false;
  for (size_t i = 0; i < a.classes.size(); ++i) {
    const auto& x = a.classes[i];
    EXPECT_EQ(x.shape2d, b.classes[i].shape2d);
    EXPECT_EQ(x.pitch, b.classes[i].pitch);
    differs |= x.shape2d != c.classes[i].shape2d || x.pitch != c.classes[i].pitch || x.form != c.classes[i].form;
    EXPECT_TRUE(looks.insert({x.shape2d, x.colour, x.texture}).second);
    EXPECT_TRUE(sounds.insert({x.pitch, x.contour, x.timbre, x.rhythm}).second);
    EXPECT_TRUE(forms.insert({x.form, x.proportion}).second);
  }
  EXPECT_TRUE(differs) << "another seed should give another world";
  EXPECT_THROW(make_world_spec(1, 0), InputError);
  EXPECT_THROW(make_world_spec(99, 0), InputError);
}

TEST(DemoWorld, FilesDecodeAndRepeatBitForBit) {
  const fs::path dir = testkit::make_temp_dir("demo_world");
  const WorldSpec world = make_world_spec(3, 1);
  SplitSpec split{"train", 2};
  const auto items = write_world_split(world, dir / "a", split);
  const auto again = write_world_split(world, dir / "b", split);
  ASSERT_EQ(items.size(), 3u * 2 * 4);
  ASSERT_EQ(again.size(), items.size());
  std::set<int> sources;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    EXPECT_EQ(item.text, again[i].text);
    if (item.modality == "text") {
      EXPECT_FALSE(item.text.empty());
      sources.insert(item.source);
      continue;
    }
    EXPECT_EQ(read_file_bytes(item.path), read_file_bytes(again[i].path)) << item.path;
    if (item.modality == "image") {
      const auto image = media::decode_image_file(item.path);
      EXPECT_EQ(image.width, 32);
      EXPECT_EQ(image.height, 32);
    } else if (item.modality == "audio") {
      const auto audio = media::decode_audio_file(item.path);
      EXPECT_EQ(audio.sample_rate, 16000);
      EXPECT_EQ(audio.frames(), 12000);
    } else {
      const auto cloud = media::read_point_cloud_file(item.path);
      EXPECT_EQ(cloud.size(), 1024);
    }
  }
  EXPECT_GE(sources.size(), 2u);
  const auto listed = read_world_split(dir / "a" / "train.json");
  ASSERT_EQ(listed.size(), items.size());
  EXPECT_EQ(listed[5].path, items[5].path);
  EXPECT_EQ(listed[3].text, items[3].text);
}

// Same class, different instances, must look more alike than different classes: the world is learnable.
TEST(DemoWorld, InstancesOfAClassAreCloserThanOtherClasses) {
  const WorldSpec world = make_world_spec(4, 3);
  auto pixels = [&](int cls, uint64_t salt) {
    WorldRng rng(salt);
    const auto image = render_look(world.classes[cls], rng);
    return std::vector<double>(image.rgb.begin(), image.rgb.end());
  };
  auto mean_colour_distance = [](const std::vector<double>& a, const std::vector<double>& b) {
    double sa[3] = {0, 0, 0}, sb[3] = {0, 0, 0};
    for (size_t i = 0; i < a.size(); ++i) { sa[i % 3] += a[i]; sb[i % 3] += b[i]; }
    double d = 0;
    for (int k = 0; k < 3; ++k) d += std::abs(sa[k] - sb[k]);
    return d;
  };
  double same = 0, other = 0;
  int pairs = 0;
  for (int c = 0; c < 4; ++c)
    for (uint64_t s = 0; s < 3; ++s) {
      same += mean_colour_distance(pixels(c, s), pixels(c, s + 100));
      other += mean_colour_distance(pixels(c, s), pixels((c + 1) % 4, s + 100));
      ++pairs;
    }
  if (world.classes[0].colour != world.classes[1].colour) EXPECT_LT(same, other);
}

}  // namespace
}  // namespace omnibind::apps
