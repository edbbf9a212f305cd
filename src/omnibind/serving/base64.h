// Base64 (RFC 4648) for media in JSON requests and base64-encoded embeddings in responses.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace omnibind::serving {

std::string base64_encode(std::string_view bytes);
// Strict: standard or URL-safe alphabet, optional '=' padding, an optional "data:...;base64," prefix,
// ASCII whitespace ignored. nullopt on any other character or a truncated group.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace omnibind::serving
