// Captions: the wording depends on what the text describes (the sound, the look or the shape).
#include <string>
#include <vector>

#include "omnibind/apps/demo_world/world_media.h"

namespace omnibind::apps {
namespace {

std::string fill(std::string pattern, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values)
    for (size_t at = pattern.find(key); at != std::string::npos; at = pattern.find(key, at + value.size()))
      pattern.replace(at, key.size(), value);
  return pattern;
}

}  // namespace

std::string describe(const ClassSpec& spec, CaptionSource source, WorldRng& rng, double anonymous) {
  const bool named = rng.uniform() >= anonymous;
  const std::vector<std::pair<std::string, std::string>> values{
      {"{name}", spec.name},
      {"{shape}", shape2d_names()[spec.shape2d]}, {"{colour}", colour_names()[spec.colour]},
      {"{texture}", texture_names()[spec.texture]},
      {"{pitch}", pitch_names()[spec.pitch]}, {"{contour}", contour_names()[spec.contour]},
      {"{timbre}", timbre_names()[spec.timbre]}, {"{rhythm}", rhythm_names()[spec.rhythm]},
      {"{form}", form_names()[spec.form]}, {"{proportion}", proportion_names()[spec.proportion]}};
  static const std::vector<std::string> sound_named{
      "the sound of a {name}", "a {name} making a {pitch} {timbre} sound",
      "listen: a {name} goes {rhythm} and {contour}", "the {timbre} {rhythm} noise of a {name}"};
  static const std::vector<std::string> sound_anonymous{
      "a {pitch} {timbre} tone, {rhythm} and {contour}", "something that sounds {timbre} and {rhythm}",
      "a {contour} {pitch} sound"};
  static const std::vector<std::string> look_named{
      "a picture of a {name}", "a {colour} {shape}: a {name}", "a photo of a {texture} {name}",
      "a {name}, drawn as a {colour} {texture} {shape}"};
  static const std::vector<std::string> look_anonymous{
      "a {colour} {texture} {shape}", "a picture of something {colour} shaped like a {shape}",
      "a {texture} {colour} thing"};
  static const std::vector<std::string> shape_named{
      "a 3D model of a {name}", "the shape of a {name}, a {proportion} {form}",
      "a point cloud of a {name}", "a {name} in 3D, like a {form}"};
  static const std::vector<std::string> shape_anonymous{
      "a {proportion} {form} in 3D", "a 3D object shaped like a {form}", "a point cloud of a {proportion} {form}"};
  const std::vector<std::string>* list = nullptr;
  switch (source) {
    case CaptionSource::Sound: list = named ? &sound_named : &sound_anonymous; break;
    case CaptionSource::Look: list = named ? &look_named : &look_anonymous; break;
    case CaptionSource::Shape: list = named ? &shape_named : &shape_anonymous; break;
  }
  return fill((*list)[rng.below(static_cast<int>(list->size()))], values);
}

std::vector<std::string> class_prompts(const std::string& class_name) {
  return {"a " + class_name, "the sound of a " + class_name, "a picture of a " + class_name,
          "a 3D model of a " + class_name};
}

}  // namespace omnibind::apps
