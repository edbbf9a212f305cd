// Atomic writes: data goes to "<path>.tmp.<pid>" in the same directory, is fsync'ed, then renamed
// over <path>. A crash or an error leaves either the old file or the complete new one, never half.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace omnibind {

// Calls write(tmp_path) to produce the file, then renames it into place. On any exception the
// temporary is removed and the exception propagates; <path> is untouched.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// Convenience: atomically replace <path> with bytes.
void write_bytes_atomically(const std::string& path, std::string_view bytes);

// Reads a whole file; InputError naming the path when it cannot be opened.
std::string read_file_bytes(const std::string& path);

}  // namespace omnibind
