#include "meshrpc/resilience/pushback.h"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <system_error>

namespace meshrpc::resilience {
namespace {

bool is_space_or_tab(char c) { return c == ' ' || c == '\t'; }

std::string_view trimmed(std::string_view value) {
  while (!value.empty() && is_space_or_tab(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space_or_tab(value.back())) value.remove_suffix(1);
  return value;
}

bool is_stop(std::string_view value) {
  constexpr std::string_view kStop = "stop";
  if (value.size() != kStop.size()) return false;
  for (size_t i = 0; i < kStop.size(); ++i) {
    const char c = value[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kStop[i]) return false;
  }
  return true;
}

constexpr Pushback kDoNotRetry{Pushback::Kind::kDoNotRetry, {}};

Pushback retry_after_ms(int64_t ms) {
  const int64_t max_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetryPushback).count();
  return {Pushback::Kind::kRetryAfter, std::chrono::milliseconds(ms < max_ms ? ms : max_ms)};
}

}  // namespace

Pushback parse_pushback(std::string_view value) {
  value = trimmed(value);
  if (is_stop(value)) return kDoNotRetry;
  // from_chars accepts an optional '-' and then digits only: no '+', no inner spaces.
  int64_t ms = 0;
  const char* const end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, ms);
  if (value.empty() || ptr != end) return kDoNotRetry;  // malformed
  if (ec == std::errc::result_out_of_range) {
    // Digits past int64: a huge wait (capped) if positive, "do not retry" if negative.
    return value.front() == '-' ? kDoNotRetry : retry_after_ms(std::numeric_limits<int64_t>::max());
  }
  if (ec != std::errc{}) return kDoNotRetry;
  return ms < 0 ? kDoNotRetry : retry_after_ms(ms);
}

}  // namespace meshrpc::resilience
