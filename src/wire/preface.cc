#include "meshrpc/wire/preface.h"

#include <algorithm>

namespace meshrpc::wire {
namespace {

// The HTTP/1.1 request methods (RFC 9110 section 9, plus PATCH), each with the space that
// ends the token, so "GETX" is garbage rather than HTTP.
constexpr std::array<std::string_view, 9> kHttpMethods = {
    "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
};

// How `bytes` relates to `token`: both agree on their common prefix, and which is longer.
enum class Match { kNo, kPrefix, kFull };

Match match_token(std::string_view bytes, std::string_view token) {
  size_t n = std::min(bytes.size(), token.size());
  if (bytes.substr(0, n) != token.substr(0, n)) return Match::kNo;
  return bytes.size() >= token.size() ? Match::kFull : Match::kPrefix;
}

}  // namespace

ConnectionStart classify_connection_start(std::string_view first_bytes) {
  if (first_bytes.empty()) return ConnectionStart::kNeedMoreBytes;
  switch (match_token(first_bytes, preface_view())) {
    case Match::kFull:
      return ConnectionStart::kMeshrpc;
    case Match::kPrefix:
      return ConnectionStart::kNeedMoreBytes;
    case Match::kNo:
      break;
  }
  bool maybe_http = false;
  for (std::string_view method : kHttpMethods) {
    Match match = match_token(first_bytes, method);
    if (match == Match::kFull) return ConnectionStart::kHttp;
    maybe_http = maybe_http || match == Match::kPrefix;
  }
  return maybe_http ? ConnectionStart::kNeedMoreBytes : ConnectionStart::kGarbage;
}

ConnectionStart classify_connection_start(const Buffer& first_bytes) {
  char scratch[kClassifyBytes];
  size_t n = std::min(first_bytes.size(), kClassifyBytes);
  return classify_connection_start(std::string_view(first_bytes.peek(n, scratch), n));
}

}  // namespace meshrpc::wire
