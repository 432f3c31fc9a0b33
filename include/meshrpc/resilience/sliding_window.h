// SlidingWindowCounter: a count of events over the last `window` of time in O(1) memory, for
// the retry budget and the circuit breaker's failure rate.
//
// The window is cut into kBucketCount buckets of window / kBucketCount each; an event adds to
// the bucket of its time, and a bucket is emptied when time moves past it. So the window
// slides in steps of one bucket, not continuously: an event is forgotten between
// 0.9 x window and 1.0 x window after it happened (with kBucketCount = 10). Memory is fixed
// whatever the event rate, where an exact window would keep one timestamp per event.
//
// Time only moves forward: a `now` earlier than one already seen counts as that latest time.
// Threading: a value; not thread-safe. Its owner guards it.
#pragma once

#include <array>
#include <cstdint>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

class SlidingWindowCounter {
 public:
  // 10 buckets: the window's edge is within 10% of its nominal length, for 10 x 8 bytes.
  static constexpr int kBucketCount = 10;

  // `window` must be at least kBucketCount nanoseconds (std::invalid_argument otherwise: a
  // setup-time programmer error).
  explicit SlidingWindowCounter(runtime::Duration window);

  void add(runtime::TimePoint now, int64_t n = 1);
  // Events in the window that ends at `now`.
  int64_t sum(runtime::TimePoint now);
  // Forgets every event.
  void clear();

  // The window as given, rounded down to a multiple of kBucketCount nanoseconds.
  runtime::Duration window() const { return bucket_width_ * kBucketCount; }

 private:
  void advance(runtime::TimePoint now);

  runtime::Duration bucket_width_;
  std::array<int64_t, kBucketCount> buckets_{};
  int64_t sum_ = 0;
  // Index of the bucket `now` falls in: floor(now / bucket_width_), counted from the epoch.
  int64_t current_tick_ = 0;
  bool started_ = false;
};

}  // namespace meshrpc::resilience
