// Media as inline HTML for the demo report: PNG/WAV data URIs (an <img>/<audio> needs no file) and
// point clouds as a small projected SVG (orthographic view, nearer points darker and drawn last).
#pragma once
#include <string>

#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::apps {

std::string image_data_uri(const media::Image& image);   // "data:image/png;base64,..."
std::string audio_data_uri(const media::Audio& audio);   // "data:audio/wav;base64,..." (16-bit PCM)

// The cloud centred and scaled to fit size x size pixels after turning it by yaw (about z) and
// pitch (about x), in radians; at most max_points points (evenly strided), deterministic text.
// InputError on an empty cloud or size < 8.
std::string svg_point_cloud(const media::PointCloud& cloud, int size = 96, double yaw = 0.6, double pitch = 0.5,
                            int max_points = 400);

}  // namespace omnibind::apps
