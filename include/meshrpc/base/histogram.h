// Histogram: the distribution of a uint64 quantity (latency in nanoseconds, message bytes),
// recorded on hot paths from every io thread, read as count, sum, min, max, percentiles and
// Prometheus-style cumulative buckets.
//
// Buckets are log-linear, like HdrHistogram with 3 significant bits: values 0..7 each have
// their own bucket; above that every power of two [2^e, 2^(e+1)) is split into 8 equal
// sub-buckets. A bucket's width is at most 1/8 of its lower bound, so any value reported from
// a bucket is within 12.5% of every value in it (percentile() reports the midpoint: within
// 6.25%). Values up to kHistogramMaxTracked (2^45 - 1: 9.7 hours in ns, 32 TiB in bytes) land
// in regular buckets; larger ones in one overflow bucket.
//
// Memory: kHistogramBucketCount (345) atomic counts + sum/min/max per shard = 2816 bytes per
// shard (cache-line aligned), x Histogram::kShardCount (4) = 11 KiB per Histogram.
//
// Threading: record() and snapshot() are safe from any number of threads at once. A snapshot
// taken during concurrent record()s counts some of them and not others; for every value it
// counts, min/max/sum already include that value (sum may also include values not yet
// counted). Once recorders have finished (happens-before snapshot()), it is exact.
// Lifetime: not copyable or movable; must outlive its recorders.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "meshrpc/base/thread_shard.h"

namespace meshrpc {

// Sub-buckets per power of two: 2^3 = 8, for at most 12.5% relative bucket width.
inline constexpr int kHistogramSubBucketBits = 3;
inline constexpr uint64_t kHistogramSubBuckets = uint64_t{1} << kHistogramSubBucketBits;
// Largest value with a regular bucket: 2^45 - 1. Covers the longest latency or the largest
// transfer worth distinguishing; anything above is "too much" and goes to overflow.
inline constexpr int kHistogramTrackedBits = 45;
inline constexpr uint64_t kHistogramMaxTracked = (uint64_t{1} << kHistogramTrackedBits) - 1;
// Regular buckets: 8 exact ones for 0..7, then 8 per power of two from 2^3 up to 2^44.
inline constexpr size_t kHistogramOverflowBucket =
    kHistogramSubBuckets * (kHistogramTrackedBits - kHistogramSubBucketBits + 1);
inline constexpr size_t kHistogramBucketCount = kHistogramOverflowBucket + 1;

// The bucket that counts `value`.
constexpr size_t histogram_bucket_index(uint64_t value) {
  if (value < kHistogramSubBuckets) return static_cast<size_t>(value);
  if (value > kHistogramMaxTracked) return kHistogramOverflowBucket;
  // value = (8 + sub) << shift with sub in [0, 8): the top 4 bits pick the sub-bucket.
  int shift = std::bit_width(value) - 1 - kHistogramSubBucketBits;
  return static_cast<size_t>((shift + 1) * kHistogramSubBuckets + (value >> shift) -
                             kHistogramSubBuckets);
}

// Smallest value counted by bucket `index`.
constexpr uint64_t histogram_bucket_lower_bound(size_t index) {
  if (index < kHistogramSubBuckets) return index;
  if (index >= kHistogramOverflowBucket) return kHistogramMaxTracked + 1;
  int shift = static_cast<int>(index / kHistogramSubBuckets) - 1;
  return (kHistogramSubBuckets + index % kHistogramSubBuckets) << shift;
}

// Largest value counted by bucket `index` (inclusive, as Prometheus `le`); UINT64_MAX for the
// overflow bucket.
constexpr uint64_t histogram_bucket_upper_bound(size_t index) {
  if (index >= kHistogramOverflowBucket) return std::numeric_limits<uint64_t>::max();
  return histogram_bucket_lower_bound(index + 1) - 1;
}

// One bucket as Prometheus exposes it: how many values were <= upper_bound.
struct HistogramBucket {
  uint64_t upper_bound;
  uint64_t cumulative_count;
};

// A copy of a Histogram's state at one moment; a plain value, no longer tied to the Histogram.
struct HistogramSnapshot {
  uint64_t count = 0;
  // Wraps modulo 2^64 (over 500 years of nanoseconds).
  uint64_t sum = 0;
  // Both 0 when count is 0.
  uint64_t min = 0;
  uint64_t max = 0;
  // Count per bucket index; kHistogramBucketCount entries.
  std::vector<uint64_t> bucket_counts;

  // The value at quantile q in [0, 1] (0.99 for p99), by nearest rank: the midpoint of the
  // bucket holding it, clamped to [min, max], so q = 0 gives min and q = 1 gives max exactly.
  // A value in the overflow bucket is reported as max. 0 when count is 0.
  uint64_t percentile(double q) const;

  // Calls visit(HistogramBucket) for each non-empty bucket, in increasing order. For
  // Prometheus: the cumulative count at any boundary is that of the last bucket visited whose
  // upper_bound is <= the boundary; the overflow bucket's upper_bound is +Inf.
  template <typename Visit>
  void for_each_bucket(Visit&& visit) const {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bucket_counts.size(); ++i) {
      if (bucket_counts[i] == 0) continue;
      cumulative += bucket_counts[i];
      visit(HistogramBucket{histogram_bucket_upper_bound(i), cumulative});
    }
  }
};

class Histogram {
 public:
  // Fewer shards than Counter (16) because each is 2.8 KiB: 4 keeps two to four io threads
  // off each other's lines at 11 KiB per histogram. More threads share shards, correctly.
  static constexpr size_t kShardCount = 4;

  Histogram() = default;
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void record(uint64_t value) {
    Shard& shard = shards_[thread_shard_index() % kShardCount];
    update_min(shard.min, value);
    update_max(shard.max, value);
    shard.sum.fetch_add(value, std::memory_order_relaxed);
    // Release, paired with the acquire in snapshot(): whoever sees this count also sees the
    // min/max/sum updates above, so a snapshot's min and max bound every value it counts.
    shard.buckets[histogram_bucket_index(value)].fetch_add(1, std::memory_order_release);
  }

  HistogramSnapshot snapshot() const;

 private:
  struct alignas(kCacheLineBytes) Shard {
    std::array<std::atomic<uint64_t>, kHistogramBucketCount> buckets{};
    std::atomic<uint64_t> sum{0};
    std::atomic<uint64_t> min{std::numeric_limits<uint64_t>::max()};
    std::atomic<uint64_t> max{0};
  };
  static_assert((kMaxThreadShardIndex + 1) % kShardCount == 0);

  // Relaxed CAS loops that write only when the value moves the bound: after warm-up, min and
  // max rarely change, so record() usually just loads them.
  static void update_min(std::atomic<uint64_t>& min, uint64_t value) {
    uint64_t current = min.load(std::memory_order_relaxed);
    while (value < current &&
           !min.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
    }
  }
  static void update_max(std::atomic<uint64_t>& max, uint64_t value) {
    uint64_t current = max.load(std::memory_order_relaxed);
    while (value > current &&
           !max.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
    }
  }

  std::array<Shard, kShardCount> shards_;
};

}  // namespace meshrpc
