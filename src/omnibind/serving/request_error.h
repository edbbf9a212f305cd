// A bad request, naming the JSON field at fault ("input[2].data"). The server answers it as
// 4xx {"error": {"message": ..., "field": ...}}.
#pragma once
#include <string>

#include "omnibind/common/error.h"

namespace omnibind::serving {

class RequestError : public InputError {
 public:
  RequestError(std::string field, const std::string& message, int status = 400)
      : InputError(message), field_(std::move(field)), status_(status) {}
  const std::string& field() const { return field_; }
  int status() const { return status_; }

 private:
  std::string field_;
  int status_;
};

}  // namespace omnibind::serving
