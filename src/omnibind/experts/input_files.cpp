#include "omnibind/experts/input_files.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "omnibind/common/atomic_file.h"

namespace omnibind::experts {
namespace {

const std::set<std::string>& extensions(Modality m) {
  static const std::set<std::string> image = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"};
  static const std::set<std::string> audio = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"};
  static const std::set<std::string> text = {".txt"};
  static const std::set<std::string> point = {".ply", ".pcd", ".npy", ".obj", ".off", ".stl", ".xyz", ".safetensors"};
  switch (m) {
    case Modality::Image: return image;
    case Modality::Audio: return audio;
    case Modality::Text: return text;
    case Modality::Point: return point;
  }
  return text;
}

std::string lower_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

bool has_modality_extension(Modality m, const std::filesystem::path& path) {
  return extensions(m).count(lower_extension(path)) != 0;
}

std::optional<Modality> modality_of_extension(const std::filesystem::path& path) {
  std::optional<Modality> found;
  for (Modality m : {Modality::Audio, Modality::Image, Modality::Text, Modality::Point})
    if (has_modality_extension(m, path)) {
      if (found) return std::nullopt;
      found = m;
    }
  return found;
}

MediaInput media_input_from_file(Modality m, const std::string& path) {
  if (m != Modality::Text) return MediaInput::from_path(path);
  std::string text = read_file_bytes(path);  // one text per file
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return MediaInput::from_text(std::move(text));
}

}  // namespace omnibind::experts
