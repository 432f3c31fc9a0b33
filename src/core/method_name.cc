#include "meshrpc/core/method_name.h"

namespace meshrpc::core {

std::string canonical_method_name(std::string_view method) {
  if (method.empty() || method.front() == '/') return std::string(method);
  const size_t dot = method.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == method.size() ||
      method.find('/') != std::string_view::npos) {
    return std::string(method);
  }
  std::string canonical;
  canonical.reserve(method.size() + 1);
  canonical += '/';
  canonical += method.substr(0, dot);
  canonical += '/';
  canonical += method.substr(dot + 1);
  return canonical;
}

Result<MethodNameParts> split_method_name(std::string_view canonical) {
  const size_t slash = canonical.rfind('/');
  if (canonical.size() < 4 || canonical.front() != '/' || slash == 0 ||
      slash + 1 == canonical.size()) {
    return invalid_argument_error("method name '" + std::string(canonical) +
                                  "' is not /package.Service/Method");
  }
  return MethodNameParts{canonical.substr(1, slash - 1), canonical.substr(slash + 1)};
}

}  // namespace meshrpc::core
