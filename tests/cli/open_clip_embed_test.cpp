// End-to-end: `omnibind embed --expert open_clip` (DFN5B-CLIP, OmniBind DFN_H14) on the dfn_clip_mini
// fixture: rows in input order equal to the reference embeddings; exotic-but-valid images (CMYK
// JPEG, 16-bit RGB PNG, palette + tRNS PNG, 1x1) embed as PIL's convert('RGB') would let them;
// corrupt inputs, an absurd header on a tiny file, a checkpoint of another family and a checkpoint
// with a missing tensor exit 2 with one line and write nothing.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <jpeglib.h>
#include <png.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
namespace tio = omnibind::tensor_io;
using omnibind::testkit::run_cli;

namespace {

std::string fx(const std::string& name) { return omnibind::testkit::shared_path("fixtures/dfn_clip_mini/" + name); }
std::string bpe() { return omnibind::testkit::shared_path("data/bpe/bpe_simple_vocab_16e6.txt.gz"); }

std::vector<std::string> args_for(const std::string& modality, const std::string& out,
                                  const std::string& weights = "") {
  return {"embed", "--expert", "open_clip", "--weights", weights.empty() ? fx("weights.pt") : weights, "--config",
          fx("config.json"), "--bpe", bpe(), "--modality", modality, "--out", out};
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_rejected(const std::vector<std::string>& args, const std::string& out, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

at::Tensor embeddings(const std::string& path) {
  auto f = tio::read_safetensors(path);
  return tio::to_tensor(f.tensors.at("DFN_H14")).clone();
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// A 24x16 CMYK JPEG (Adobe marker, as Photoshop writes them) through libjpeg.
void write_cmyk_jpeg(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = 24;
  c.image_height = 16;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, JCS_CMYK);
  c.write_Adobe_marker = TRUE;
  jpeg_start_compress(&c, TRUE);
  std::vector<JSAMPLE> row(24 * 4);
  while (c.next_scanline < c.image_height) {
    for (int x = 0; x < 24; ++x) {
      row[4 * x + 0] = static_cast<JSAMPLE>(10 * x);
      row[4 * x + 1] = static_cast<JSAMPLE>(15 * c.next_scanline);
      row[4 * x + 2] = 128;
      row[4 * x + 3] = static_cast<JSAMPLE>(x * c.next_scanline);
    }
    JSAMPROW p = row.data();
    jpeg_write_scanlines(&c, &p, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// PNG through libpng: colour type, bit depth, rows of raw bytes, optional palette + tRNS.
void write_png(const std::string& path, int w, int h, int color_type, int depth, const std::vector<png_byte>& data,
               const std::vector<png_color>& palette = {}, const std::vector<png_byte>& trans = {}) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trans.empty()) png_set_tRNS(png, info, trans.data(), static_cast<int>(trans.size()), nullptr);
  png_write_info(png, info);
  const size_t stride = data.size() / static_cast<size_t>(h);
  for (int y = 0; y < h; ++y) png_write_row(png, data.data() + static_cast<size_t>(y) * stride);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

}  // namespace

TEST(OpenClipEmbedCli, ImagesAndTextsMatchTheReferenceInInputOrder) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("oc_embed");
  const auto want = tio::read_safetensors(fx("expected_model.safetensors"));
  const at::Tensor want_img = tio::to_tensor(want.tensors.at("image/omnibind_embedding"));
  const at::Tensor want_txt = tio::to_tensor(want.tensors.at("text/omnibind_embedding"));

  // Images in the fixture's order (not sorted), so row i is reference row i.
  const std::vector<std::string> files = {"dog_image.jpg",        "train.jpeg",           "cifar10_cat_0000.jpg",
                                          "wide_car_333x100.png", "dog_gray_alpha_300x400.png", "tiny_rgb_7x5.png",
                                          "very_wide_600x50.png"};
  auto out = dir + "/img.safetensors";
  auto a = args_for("image", out);
  for (const auto& f : files) a.push_back(fx("inputs/" + f));
  auto r = run_cli(a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  at::Tensor img = embeddings(out);
  ASSERT_EQ(img.sizes(), want_img.sizes());
  EXPECT_LE(max_abs(img, want_img), 1e-4);

  // Two texts, reversed relative to the fixture: rows follow the command line.
  auto tout = dir + "/txt.safetensors";
  auto t = args_for("text", tout);
  t.insert(t.end(), {"--text", "A dog.", "--text", "a photo of train"});
  auto rt = run_cli(t);
  ASSERT_EQ(rt.exit_code, 0) << rt.err;
  at::Tensor txt = embeddings(tout);
  ASSERT_EQ(txt.size(0), 2);
  EXPECT_LE(max_abs(txt[0], want_txt[1]), 1e-4);
  EXPECT_LE(max_abs(txt[1], want_txt[0]), 1e-4);

  // bf16 runs too (close, not bit-equal).
  auto bout = dir + "/bf16.safetensors";
  auto b = args_for("image", bout, fx("weights.safetensors"));
  b.insert(b.end(), {"--precision", "bf16", fx("inputs/train.jpeg")});
  auto rb = run_cli(b);
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  at::Tensor e = embeddings(bout)[0].to(at::kDouble), w = want_img[1].to(at::kDouble);
  EXPECT_GE((e.dot(w) / (e.norm() * w.norm())).item<double>(), 0.999);
}

TEST(OpenClipEmbedCli, ExoticButValidImagesEmbed) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("oc_exotic");
  write_cmyk_jpeg(dir + "/cmyk.jpg");
  std::vector<png_byte> rgb16;
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 13; ++x)
      for (int c = 0; c < 3; ++c) {
        const int v = (x * 5000 + y * 3000 + c * 20000) % 65536;
        rgb16.push_back(static_cast<png_byte>(v >> 8));
        rgb16.push_back(static_cast<png_byte>(v & 0xFF));
      }
  write_png(dir + "/rgb16.png", 13, 9, PNG_COLOR_TYPE_RGB, 16, rgb16);
  std::vector<png_byte> idx;
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 10; ++x) idx.push_back(static_cast<png_byte>((x + y) % 3));
  write_png(dir + "/palette_trns.png", 10, 6, PNG_COLOR_TYPE_PALETTE, 8, idx, {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}},
            {0, 128});
  write_png(dir + "/one.png", 1, 1, PNG_COLOR_TYPE_RGB, 8, {200, 100, 50});

  auto out = dir + "/exotic.safetensors";
  auto a = args_for("image", out);
  for (const char* f : {"cmyk.jpg", "rgb16.png", "palette_trns.png", "one.png"}) a.push_back(dir + "/" + f);
  auto r = run_cli(a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  at::Tensor e = embeddings(out);
  ASSERT_EQ(e.size(0), 4);
  EXPECT_LT((e.norm(2, {1}) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(e.isnan().any().item<bool>());
}

TEST(OpenClipEmbedCli, BadInputsExit2WithOneLineAndNoFile) {
  OMNIBIND_REQUIRE_SHARED();
  auto dir = omnibind::testkit::make_temp_dir("oc_bad");
  auto out = dir + "/never.safetensors";

  // A PNG header announcing 20000 x 20000 pixels on a file of a few dozen bytes.
  {
    std::string png("\x89PNG\r\n\x1A\n", 8);
    const unsigned char ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20, 8, 2, 0, 0, 0};
    png.append(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 4; i < sizeof ihdr; ++i) {
      crc ^= ihdr[i];
      for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xFFFFFFFFu;
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<char>((crc >> s) & 0xFF));
    std::ofstream(dir + "/huge.png", std::ios::binary) << png;
  }
  auto a = args_for("image", out);
  a.insert(a.end(), {fx("inputs/dog_image.jpg"), dir + "/huge.png"});
  expect_rejected(a, out, "huge.png");

  // A truncated JPEG among good files.
  {
    std::ifstream in(fx("inputs/train.jpeg"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/half.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  auto b = args_for("image", out);
  b.insert(b.end(), {fx("inputs/dog_image.jpg"), dir + "/half.jpg"});
  expect_rejected(b, out, "half.jpg");

  std::ofstream(dir + "/text.jpg") << "this is not an image";
  auto c = args_for("image", out);
  c.push_back(dir + "/text.jpg");
  expect_rejected(c, out, "text.jpg");

  // A checkpoint of another family (EVA02-CLIP): the first missing open_clip tensor is named.
  auto d = args_for("image", out, omnibind::testkit::shared_path("fixtures/eva02_clip_mini/weights.pt"));
  d.push_back(fx("inputs/dog_image.jpg"));
  expect_rejected(d, out, "visual.conv1.weight");

  // The right family with one tensor missing.
  {
    auto sd = tio::load_checkpoint(fx("weights.safetensors"));
    std::vector<std::pair<std::string, at::Tensor>> kept;
    for (const auto& n : sd.names())
      if (n != "transformer.resblocks.1.mlp.c_proj.bias") kept.emplace_back(n, tio::to_tensor(sd.at(n)));
    tio::write_torch_checkpoint(dir + "/missing.bin", kept);
  }
  auto e = args_for("text", out, dir + "/missing.bin");
  e.insert(e.end(), {"--text", "a dog"});
  expect_rejected(e, out, "transformer.resblocks.1.mlp.c_proj.bias");

  // Text without --bpe; audio, which the expert does not cover.
  std::vector<std::string> f = {"embed", "--expert", "open_clip", "--weights", fx("weights.pt"), "--config",
                                fx("config.json"), "--modality", "text", "--text", "a dog", "--out", out};
  expect_rejected(f, out, "--bpe");
  auto g = args_for("audio", out);
  g.push_back(fx("inputs/dog_image.jpg"));
  expect_rejected(g, out, "audio");
}

TEST(OpenClipEmbedCli, InspectRecognisesTheCheckpoint) {
  OMNIBIND_REQUIRE_SHARED();
  auto r = omnibind::testkit::run_cli({"inspect", fx("weights.pt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(expert open_clip)"), std::string::npos) << r.out;
  // An EVA-CLIP file is not taken for an open_clip one, and the other way round.
  EXPECT_EQ(r.out.find("EVA-CLIP"), std::string::npos) << r.out;
}
