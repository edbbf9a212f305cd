// Files as inputs of a modality: which extensions belong to which modality (what `omnibind embed`
// picks up when it recurses a directory, what the Python module guesses a modality from) and how a
// file becomes a MediaInput (a text file is one text).
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "omnibind/experts/expert.h"

namespace omnibind::experts {

// Does the extension (case-insensitive) belong to modality m? image: jpg jpeg png webp bmp gif tif tiff;
// audio: wav flac ogg oga mp3 aiff aif; text: txt; point: ply pcd npy obj off stl xyz safetensors.
bool has_modality_extension(Modality m, const std::filesystem::path& path);
// The one modality whose extensions include the path's, or nullopt.
std::optional<Modality> modality_of_extension(const std::filesystem::path& path);
// A file as an input of m: media by path; for text the file's contents without trailing newlines.
MediaInput media_input_from_file(Modality m, const std::string& path);

}  // namespace omnibind::experts
