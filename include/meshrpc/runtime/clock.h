// Time as meshrpc code sees it: a monotonic time point with nanosecond resolution whose only
// source is Env::now(). MonotonicClock deliberately has no static now(): reading the real
// clock outside runtime/ would break simulation (DESIGN.md principle 2).
#pragma once

#include <chrono>
#include <cstdint>

namespace meshrpc::runtime {

using Duration = std::chrono::nanoseconds;

struct MonotonicClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = Duration;
  using time_point = std::chrono::time_point<MonotonicClock, Duration>;
  static constexpr bool is_steady = true;
};

using TimePoint = MonotonicClock::time_point;

// A time point that never comes: "no deadline".
inline constexpr TimePoint kInfiniteFuture = TimePoint::max();

// The system's calendar time, in whole seconds since the Unix epoch: only for comparing with
// calendar times that come from outside (a token's expiry, like a certificate's), never for
// measuring time, which is Env::now(). Not simulated: code under SimEnv that calls it (token
// checks) should take the time as an argument instead.
int64_t unix_seconds_now();

}  // namespace meshrpc::runtime
