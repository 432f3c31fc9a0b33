#include "meshrpc/resilience/sliding_window.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace meshrpc::resilience {
namespace {

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

size_t slot_of(int64_t tick) {
  const int64_t n = SlidingWindowCounter::kBucketCount;
  return static_cast<size_t>(((tick % n) + n) % n);
}

}  // namespace

SlidingWindowCounter::SlidingWindowCounter(runtime::Duration window)
    : bucket_width_(window / kBucketCount) {
  if (bucket_width_ <= runtime::Duration::zero()) {
    throw std::invalid_argument("sliding window " + std::to_string(window.count()) +
                                " ns is shorter than " + std::to_string(kBucketCount) + " ns");
  }
}

void SlidingWindowCounter::advance(runtime::TimePoint now) {
  const int64_t tick = floor_div(now.time_since_epoch().count(), bucket_width_.count());
  if (!started_) {
    started_ = true;
    current_tick_ = tick;
    return;
  }
  if (tick <= current_tick_) return;
  // Empty the buckets time moved past; past a whole window, that is all of them.
  const int64_t steps = std::min<int64_t>(tick - current_tick_, kBucketCount);
  for (int64_t i = 1; i <= steps; ++i) {
    int64_t& bucket = buckets_[slot_of(current_tick_ + i)];
    sum_ -= bucket;
    bucket = 0;
  }
  current_tick_ = tick;
}

void SlidingWindowCounter::add(runtime::TimePoint now, int64_t n) {
  advance(now);
  buckets_[slot_of(current_tick_)] += n;
  sum_ += n;
}

int64_t SlidingWindowCounter::sum(runtime::TimePoint now) {
  advance(now);
  return sum_;
}

void SlidingWindowCounter::clear() {
  buckets_.fill(0);
  sum_ = 0;
}

}  // namespace meshrpc::resilience
