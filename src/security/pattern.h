// Name patterns of access rules and exempt-method lists: an exact name, or a prefix ending in
// a single '*' ("/pkg.Svc/*", "uri:spiffe://example.org/ns/prod/*"); "*" alone matches all.
// A '*' anywhere else is refused when the pattern is made, so a pattern never matches more
// than it reads as.
#pragma once

#include <string_view>

#include "meshrpc/base/status.h"

namespace meshrpc::security::detail {

inline bool matches_pattern(std::string_view pattern, std::string_view text) {
  if (!pattern.empty() && pattern.back() == '*') {
    return text.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == text;
}

// INVALID_ARGUMENT naming `what` when `pattern` is empty or has a '*' before its end.
inline Status check_pattern(std::string_view pattern, std::string_view what) {
  if (pattern.empty()) return invalid_argument_error(std::string(what) + " pattern is empty");
  const size_t star = pattern.find('*');
  if (star != std::string_view::npos && star + 1 != pattern.size()) {
    return invalid_argument_error(std::string(what) + " pattern '" + std::string(pattern) +
                                  "' has a '*' before its end; only a trailing '*' is allowed");
  }
  return Status();
}

}  // namespace meshrpc::security::detail
