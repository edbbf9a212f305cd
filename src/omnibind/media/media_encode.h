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

// WAV holding samples exactly as given (no scaling, no clipping): int16 PCM, 32-bit or 64-bit IEEE
// float, interleaved [frames][channels]. decode_audio_bytes gives back int16 / 32768, the float32
// samples bit for bit, float64 rounded to float32 (as for any 64-bit float file). Used by the Python
// module to hand decoded arrays to the experts. InputError on a non-finite float sample (naming its
// frame and channel), a bad sample rate, or no frames.
enum class WavSample { Int16, Float32, Float64 };
std::string encode_wav_samples(const void* interleaved, WavSample type, int channels, int64_t frames, int sample_rate);
std::string encode_ply(const PointCloud& cloud);                // binary_little_endian, xyz (+ rgb uchar when had_colour)
// What numpy's np.save writes for a C-order little-endian float array [rows, cols] (NPY 1.0; float_bytes 2, 4
// or 8: '<f2', '<f4', '<f8'): the point-cloud reader takes [N, 3] / [N, 6] exactly as from a .npy file.
std::string encode_npy_floats(const void* data, int float_bytes, int64_t rows, int64_t cols);

void write_png(const std::string& path, const Image& image);
void write_wav(const std::string& path, const Audio& audio);
void write_ply(const std::string& path, const PointCloud& cloud);

}  // namespace omnibind::media
