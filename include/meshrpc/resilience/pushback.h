// Server pushback: a server's answer to "may I retry this call, and when?", carried in the
// call's trailing metadata under kRetryPushbackKey (gRPC's grpc-retry-pushback-ms, A6).
//
// Wire meaning of the header's value (ASCII, leading and trailing spaces or tabs ignored):
//   "N", N a decimal integer >= 0  -> retry no sooner than N ms after this response ("-0" is 0)
//                                     (N = 0: retry now, still subject to the budget)
//   "-N", N >= 1, or "stop"        -> do not retry this call at all
//   anything else                  -> do not retry, as gRPC does: a server that sent the
//                                     header meant to push back, and the safe reading of an
//                                     unreadable pushback is the strongest one
//   header absent                  -> no pushback: the retry policy decides alone
// A pushback only restrains the client: kRetryAfter never makes a call retryable that the
// classification (retry_policy.h) would not retry, and the retry still draws on the budget.
//
// The resilience layer depends only on base and runtime (DESIGN.md), so the driver looks the
// key up in core::Metadata and passes the value here.
// Threading: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

inline constexpr std::string_view kRetryPushbackKey = "meshrpc-retry-pushback-ms";

// Longest delay a pushback can ask for: 1 hour. Longer than any call deadline worth having,
// so a capped delay still means "not within this call"; and short enough that now + delay
// never overflows a TimePoint however large the N a server (or a corrupted header) sends.
inline constexpr runtime::Duration kMaxRetryPushback = std::chrono::hours(1);

struct Pushback {
  enum class Kind : uint8_t {
    kNone,        // no pushback: the retry policy decides alone
    kRetryAfter,  // retry, but not before retry_after from the response has passed
    kDoNotRetry,  // fail the call with this attempt's status
  };

  Kind kind = Kind::kNone;
  // Set for kRetryAfter, in [0, kMaxRetryPushback]; zero otherwise.
  runtime::Duration retry_after{};

  friend bool operator==(const Pushback&, const Pushback&) = default;
};

// What the value of a kRetryPushbackKey header asks for. Never kNone: a present header always
// pushes back; kNone is for the caller whose metadata has no such header.
Pushback parse_pushback(std::string_view value);

}  // namespace meshrpc::resilience
