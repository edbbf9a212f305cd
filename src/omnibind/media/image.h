// Still-image decoding (JPEG via libjpeg-turbo, PNG via libpng) into 8-bit RGB, the way PIL's
// Image.open(f).convert("RGB") produces it: no colour management, no EXIF rotation, alpha dropped
// (not composited), grey replicated to R=G=B, palettes expanded, 16-bit samples reduced to 8 bits.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace omnibind::media {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // [height][width][3], row-major, interleaved RGB
};

// Format chosen by magic bytes, never by extension. InputError naming `name` on empty input,
// unknown format, corrupt/truncated data or absurd dimensions.
Image decode_image_bytes(std::string_view bytes, const std::string& name);
Image decode_image_file(const std::string& path);

}  // namespace omnibind::media
