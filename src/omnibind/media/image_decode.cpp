// JPEG (libjpeg-turbo) and PNG (libpng) -> 8-bit RGB, matching PIL's open(...).convert("RGB").
// Both libraries report errors by calling an error routine that must not return: we longjmp back
// out of the decoder and turn the message into an InputError naming the input.
#include "omnibind/media/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>
#include <jerror.h>


#include <cstring>
#include <string>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::media {
namespace {

// PIL refuses images above 2 * MAX_IMAGE_PIXELS (DecompressionBombError); we use the same bound.
constexpr uint64_t kMaxPixels = 2ull * 89478485ull;

void check_dimensions(uint64_t w, uint64_t h, const std::string& name) {
  require(w > 0 && h > 0, name + ": image has zero width or height");
  require(w * h <= kMaxPixels, name + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
                                   " pixels exceeds the limit of " + std::to_string(kMaxPixels) + " pixels");
}

// ---------------------------------------------------------------- JPEG
struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}
// Warnings are ignored except a premature end of data: PIL refuses truncated JPEGs ("image file
// is truncated") where libjpeg alone would pad the picture with grey.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(cinfo);
}

// Separate function so that no object with a destructor lives across setjmp.
bool decode_jpeg_raw(const std::string_view bytes, Image& out, JpegError& jerr, uint64_t& bad_w, uint64_t& bad_h) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&jerr.mgr);
  jerr.mgr.error_exit = jpeg_error_exit;
  jerr.mgr.emit_message = jpeg_on_message;
  jerr.message[0] = 0;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxPixels || cinfo.image_width == 0 ||
      cinfo.image_height == 0) {
    bad_w = cinfo.image_width;
    bad_h = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return true;  // caller reports the dimensions
  }
  // PIL: YCbCr -> RGB by libjpeg, greyscale read as L, CMYK/YCCK read as CMYK (Adobe-inverted).
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  const bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = cmyk ? JCS_CMYK : grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int w = cinfo.output_width, h = cinfo.output_height, nc = cinfo.output_components;
  out.width = w;
  out.height = h;
  out.rgb.assign(static_cast<size_t>(w) * h * 3, 0);
  // Scanline buffer from libjpeg's own pool: freed by jpeg_destroy_decompress even after a longjmp.
  JSAMPARRAY rowbuf = (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo), JPOOL_IMAGE,
                                                 static_cast<JDIMENSION>(w * nc), 1);
  JSAMPROW row = rowbuf[0];
  const bool adobe_inverted = cmyk && cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * w * 3;
    for (int x = 0; x < w; ++x) {
      if (nc == 3) {
        std::memcpy(dst + 3 * x, row + 3 * x, 3);
      } else if (nc == 1) {
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
      } else {
        // PIL cmyk2rgb: c' = 255 - c (after undoing Adobe's inversion), rgb = (255-c)*(255-k)/255.
        int v[4];
        for (int c = 0; c < 4; ++c) v[c] = adobe_inverted ? 255 - row[4 * x + c] : row[4 * x + c];
        for (int c = 0; c < 3; ++c) {
          int t = (255 - v[c]) * (255 - v[3]) + 128;
          dst[3 * x + c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
        }
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

Image decode_jpeg(std::string_view bytes, const std::string& name) {
  Image img;
  JpegError jerr;
  uint64_t bad_w = 0, bad_h = 0;
  if (!decode_jpeg_raw(bytes, img, jerr, bad_w, bad_h))
    throw InputError(name + ": corrupt or truncated JPEG (" + std::string(jerr.message) + ")");
  if (img.width == 0) check_dimensions(bad_w, bad_h, name);
  return img;
}

// ---------------------------------------------------------------- PNG
struct PngReader {
  std::string_view data;
  size_t pos = 0;
  char message[256] = {0};
};

void png_read_from_memory(png_structp png, png_bytep dst, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->data.size() - r->pos < n) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(dst, r->data.data() + r->pos, n);
  r->pos += n;
}
void png_on_error(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

// Returns false on a libpng error (message in reader.message).
// buf/rows live in the caller so that nothing with a destructor is modified across setjmp.
bool decode_png_raw(PngReader& reader, Image& out, uint64_t& bad_w, uint64_t& bad_h, std::vector<uint8_t>& buf,
                    std::vector<png_bytep>& rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, &reader, png_read_from_memory);
  png_set_user_limits(png, 1u << 20, 1u << 20);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (static_cast<uint64_t>(w) * h > kMaxPixels) {
    bad_w = w;
    bad_h = h;
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
  }
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  // 16-bit greyscale: PIL opens it as mode "I" and convert("RGB") clips each value to 0..255
  // (it does not scale), so keep all 16 bits and clip below.
  const bool grey16 = depth == 16 && color == PNG_COLOR_TYPE_GRAY;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);            // tRNS ignored, as PIL's convert
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);  // v * 255/(2^d-1), like PIL's L;2/L;4/1
  if (depth == 16 && !grey16) png_set_strip_16(png);                           // high byte, like PIL's *;16B unpackers
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);                  // dropped, not composited
  if (grey16) png_set_swap(png);                                               // host order (little endian)
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  const int channels = png_get_channels(png, info);
  buf.resize(rowbytes * h);
  rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = buf.data() + y * rowbytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);

  out.width = static_cast<int>(w);
  out.height = static_cast<int>(h);
  out.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (png_uint_32 y = 0; y < h; ++y) {
    const uint8_t* src = rows[y];
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * w * 3;
    for (png_uint_32 x = 0; x < w; ++x) {
      if (grey16) {
        uint16_t v;
        std::memcpy(&v, src + 2 * x, 2);
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v > 255 ? 255 : static_cast<uint8_t>(v);
      } else if (channels == 1) {
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
      } else {
        std::memcpy(dst + 3 * x, src + 3 * x, 3);
      }
    }
  }
  return true;
}

Image decode_png(std::string_view bytes, const std::string& name) {
  PngReader reader;
  reader.data = bytes;
  Image img;
  uint64_t bad_w = 0, bad_h = 0;
  std::vector<uint8_t> buf;
  std::vector<png_bytep> rows;
  if (!decode_png_raw(reader, img, bad_w, bad_h, buf, rows))
    throw InputError(name + ": corrupt or truncated PNG (" + std::string(reader.message) + ")");
  if (img.width == 0) check_dimensions(bad_w, bad_h, name);
  return img;
}

bool starts_with(std::string_view b, std::string_view magic) { return b.size() >= magic.size() && b.substr(0, magic.size()) == magic; }

}  // namespace

Image decode_image_bytes(std::string_view bytes, const std::string& name) {
  require(!bytes.empty(), name + ": empty file, expected a JPEG or PNG image");
  if (starts_with(bytes, std::string_view("\xFF\xD8\xFF", 3))) return decode_jpeg(bytes, name);
  if (starts_with(bytes, std::string_view("\x89PNG\r\n\x1A\n", 8))) return decode_png(bytes, name);
  std::string what = "unknown";
  if (starts_with(bytes, "GIF8")) what = "GIF";
  else if (starts_with(bytes, "BM")) what = "BMP";
  else if (starts_with(bytes, "RIFF") && bytes.size() >= 12 && bytes.substr(8, 4) == "WEBP") what = "WebP";
  throw InputError(name + ": unsupported image format (" + what + "), expected JPEG or PNG");
}

Image decode_image_file(const std::string& path) { return decode_image_bytes(read_file_bytes(path), path); }

}  // namespace omnibind::media
