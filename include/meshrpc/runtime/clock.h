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

}  // namespace meshrpc::runtime
