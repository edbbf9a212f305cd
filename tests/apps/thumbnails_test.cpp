// Report thumbnails: data URIs decode back to the same media; point-cloud SVGs stay inside the
// picture, draw the near side last and darker, and reject empty input with one line.
#include <gtest/gtest.h>

#include <regex>

#include "omnibind/apps/report/thumbnails.h"
#include "omnibind/common/error.h"
#include "omnibind/serving/base64.h"

namespace omnibind::apps {
namespace {

TEST(Thumbnails, DataUrisDecodeBackToTheMedia) {
  media::Image image{2, 1, {255, 0, 0, 0, 0, 255}};
  const std::string png = image_data_uri(image);
  ASSERT_EQ(png.rfind("data:image/png;base64,", 0), 0u);
  const auto bytes = serving::base64_decode(png);
  ASSERT_TRUE(bytes);
  const media::Image back = media::decode_image_bytes(*bytes, "thumb");
  EXPECT_EQ(back.width, 2);
  EXPECT_EQ(back.rgb, image.rgb);

  media::Audio audio{8000, {{0.0f, 0.5f, -0.5f, 0.25f}}};
  const std::string wav = audio_data_uri(audio);
  ASSERT_EQ(wav.rfind("data:audio/wav;base64,", 0), 0u);
  const auto wav_bytes = serving::base64_decode(wav);
  ASSERT_TRUE(wav_bytes);
  const media::Audio heard = media::decode_audio_bytes(*wav_bytes, "thumb");
  EXPECT_EQ(heard.sample_rate, 8000);
  ASSERT_EQ(heard.frames(), 4);
  EXPECT_NEAR(heard.channels[0][1], 0.5f, 1e-4);
  EXPECT_NEAR(heard.channels[0][2], -0.5f, 1e-4);
}

TEST(Thumbnails, PointCloudProjectsInsideThePictureNearestLastAndDarkest) {
  media::PointCloud cloud;
  for (int i = 0; i < 1000; ++i) {  // a line along y (depth at yaw = pitch = 0) plus spread in x and z
    cloud.xyz.push_back(static_cast<float>((i % 10) - 4.5));
    cloud.xyz.push_back(static_cast<float>(i % 7));
    cloud.xyz.push_back(static_cast<float>((i % 13) * 0.5));
  }
  const std::string svg = svg_point_cloud(cloud, 64, 0.0, 0.0, 100);
  const std::regex circle("cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\" r=\"1.2\" fill=\"#([0-9a-f]{2})");
  std::vector<int> greys;
  for (std::sregex_iterator it(svg.begin(), svg.end(), circle), end; it != end; ++it) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    EXPECT_GE(x, 0.0);
    EXPECT_LE(x, 64.0);
    EXPECT_GE(y, 0.0);
    EXPECT_LE(y, 64.0);
    greys.push_back(std::stoi((*it)[3].str(), nullptr, 16));
  }
  ASSERT_EQ(greys.size(), 100u);                          // strided down to max_points
  EXPECT_TRUE(std::is_sorted(greys.rbegin(), greys.rend()));  // far (light) first, near (dark) last
  EXPECT_EQ(greys.front(), 200);
  EXPECT_EQ(greys.back(), 30);
  EXPECT_EQ(svg, svg_point_cloud(cloud, 64, 0.0, 0.0, 100));
  EXPECT_THROW(svg_point_cloud(media::PointCloud{}, 64), InputError);
  EXPECT_THROW(svg_point_cloud(cloud, 4), InputError);
}

}  // namespace
}  // namespace omnibind::apps
