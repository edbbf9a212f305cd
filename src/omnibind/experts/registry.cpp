#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"

namespace omnibind::experts {

// Each expert family provides one of these; they are called once, on first use of the registry.
// (Explicit calls rather than static initialisers: a static library drops unreferenced objects.)
void register_builtin_experts();

namespace {
struct Entry {
  std::string description;
  ExpertFactory factory;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
std::once_flag builtins_once;
void ensure_builtins() { std::call_once(builtins_once, register_builtin_experts); }
}  // namespace

std::string_view modality_name(Modality m) {
  switch (m) {
    case Modality::Audio: return "audio";
    case Modality::Image: return "image";
    case Modality::Text: return "text";
    case Modality::Point: return "point";
  }
  return "?";
}

Modality parse_modality(std::string_view name) {
  for (Modality m : {Modality::Audio, Modality::Image, Modality::Text, Modality::Point})
    if (modality_name(m) == name) return m;
  throw InputError("unknown modality '" + std::string(name) + "' (expected audio, image, text or point)");
}

std::string Expert::key() const {
  std::string k = name();
  for (char& ch : k) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return k;
}

bool Expert::covers(Modality m) const {
  auto ms = modalities();
  return std::find(ms.begin(), ms.end(), m) != ms.end();
}

void register_expert(const std::string& name, const std::string& description, ExpertFactory factory) {
  table()[name] = Entry{description, std::move(factory)};
}

std::unique_ptr<Expert> create_expert(const std::string& name, const ExpertOptions& options) {
  ensure_builtins();
  auto it = table().find(name);
  if (it == table().end()) {
    std::string known;
    for (auto& [n, e] : table()) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown expert '" + name + "' (known: " + known + ")");
  }
  return it->second.factory(options);
}

std::vector<std::pair<std::string, std::string>> list_experts() {
  ensure_builtins();
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [n, e] : table()) out.emplace_back(n, e.description);
  return out;
}

}  // namespace omnibind::experts
