// How a CLI verb plugs in: each verb_*.cpp registers itself at start-up with REGISTER_VERB, adds
// its options to its CLI11 sub-command, and returns the function that runs it. main.cpp never
// changes when a verb is added.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace omnibind::cli {

using VerbRun = std::function<int()>;
using VerbSetup = std::function<VerbRun(CLI::App& sub)>;

struct VerbInfo {
  std::string name;
  std::string description;
  VerbSetup setup;
};

std::vector<VerbInfo>& verb_registry();

struct VerbRegistrar {
  VerbRegistrar(std::string name, std::string description, VerbSetup setup) {
    verb_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace omnibind::cli

#define OMNIBIND_CONCAT_INNER(a, b) a##b
#define OMNIBIND_CONCAT(a, b) OMNIBIND_CONCAT_INNER(a, b)
#define REGISTER_VERB(name, description, setup) \
  static ::omnibind::cli::VerbRegistrar OMNIBIND_CONCAT(verb_registrar_, __LINE__)(name, description, setup)
