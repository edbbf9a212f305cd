// Typed errors. InputError = the user's input (a file, a key, a shape, a flag, a request) is wrong:
// the CLI prints its message on one line and exits 2, the server answers 4xx with it.
// Anything else escaping to the top is an internal error (exit 1 / 500).
#pragma once
#include <stdexcept>
#include <string>

namespace omnibind {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws InputError(message) when cond is false. For validating what users hand us.
inline void require(bool cond, const std::string& message) {
  if (!cond) throw InputError(message);
}

}  // namespace omnibind
