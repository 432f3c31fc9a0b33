// Method names. On the wire a method is "/package.Service/Method" (gRPC's path form, which
// the HTTP/JSON gateway serves as POST /package.Service/Method). Code may also write the
// dotted form "package.Service.Method" or "Service.Method" (seed 000's "Master.GetChunkHandle"):
// the last dot separates the method from its service.
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/result.h"

namespace meshrpc::core {

// "/pkg.Svc/Method" stays as it is; "pkg.Svc.Method" becomes "/pkg.Svc/Method". Anything
// else (empty, no service, a slash in the dotted form) is returned unchanged: the server then
// answers it as an unknown method.
std::string canonical_method_name(std::string_view method);

// "pkg.Svc" and "Method" of a canonical name, or INVALID_ARGUMENT.
struct MethodNameParts {
  std::string_view service;
  std::string_view method;
};
Result<MethodNameParts> split_method_name(std::string_view canonical);

}  // namespace meshrpc::core
