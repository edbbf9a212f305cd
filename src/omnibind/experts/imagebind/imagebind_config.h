// ImageBind hyper-parameters for the three towers we run (vision, audio, text). Mirrors the
// keyword arguments of the reference ImageBindModel constructor; depth/thermal/IMU are ignored.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace omnibind::experts::imagebind {

struct TowerConfig {
  int64_t dim = 0;     // embed_dim of the trunk
  int64_t blocks = 0;  // transformer blocks
  int64_t heads = 0;   // attention heads (dim % heads == 0)
};

struct ImageBindConfig {
  std::string name;                                  // "huge" or the config file's path
  int64_t out_dim = 1024;                            // joint embedding size
  TowerConfig vision{1280, 32, 16};
  TowerConfig audio{768, 12, 12};
  TowerConfig text{1024, 24, 16};
  int64_t video_frames = 2;                          // PadIm2Video repeats the image this often
  std::array<int64_t, 3> kernel_size{2, 14, 14};     // vision Conv3d kernel = stride
  int64_t image_size = 224;
  int64_t audio_kernel = 16, audio_stride = 10;      // audio Conv2d
  int64_t audio_mel_bins = 128, audio_target_len = 204;
  int64_t audio_clips = 3;                           // clips per audio file (data pipeline)
  int64_t vocab_size = 49408, context_length = 77;   // hard-coded in the reference

  // Derived token counts (cls token included).
  int64_t vision_tokens() const;  // 1 + (T/kt)*(224/kh)*(224/kw) = 257
  int64_t audio_tokens() const;   // 1 + ((128-16)/10+1)*((204-16)/10+1) = 229
  void validate() const;          // InputError naming the bad field
};

// Built-in sizes: "huge" (imagebind_huge). InputError listing the known names otherwise.
ImageBindConfig builtin_config(const std::string& size);

// A JSON config: either the reference's constructor kwargs as an object, or an object with a
// "kwargs" member holding them (the parity fixture's config.json). Missing keys take the
// reference constructor's defaults (not huge's). InputError naming the file and key on defects.
ImageBindConfig load_config(const std::string& path);

}  // namespace omnibind::experts::imagebind
