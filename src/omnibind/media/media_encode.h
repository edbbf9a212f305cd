// Encoding media to files (the inverse of the decoders): 8-bit RGB PNG, 16-bit PCM WAV, binary
// little-endian PLY. Used by generators (the demo world) and tests; every write is atomic.
#pragma once
#include <string>

#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::media {

std::string encode_png(const Image& image);                     // InputError on inconsistent sizes
std::string encode_wav_pcm16(const Audio& audio);               // samples clipped to [-1, 1]
std::string encode_ply(const PointCloud& cloud);                // binary_little_endian, xyz (+ rgb uchar when had_colour)

void write_png(const std::string& path, const Image& image);
void write_wav(const std::string& path, const Audio& audio);
void write_ply(const std::string& path, const PointCloud& cloud);

}  // namespace omnibind::media
