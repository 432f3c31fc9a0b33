#include "meshrpc/base/histogram.h"

#include <algorithm>
#include <cmath>

namespace meshrpc {

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot out;
  out.bucket_counts.assign(kHistogramBucketCount, 0);
  uint64_t min = std::numeric_limits<uint64_t>::max();
  for (const Shard& shard : shards_) {
    uint64_t shard_count = 0;
    for (size_t i = 0; i < kHistogramBucketCount; ++i) {
      // Acquire, paired with record(): makes this shard's min/max/sum cover what we count.
      uint64_t n = shard.buckets[i].load(std::memory_order_acquire);
      out.bucket_counts[i] += n;
      shard_count += n;
    }
    if (shard_count == 0) continue;
    out.count += shard_count;
    out.sum += shard.sum.load(std::memory_order_relaxed);
    min = std::min(min, shard.min.load(std::memory_order_relaxed));
    out.max = std::max(out.max, shard.max.load(std::memory_order_relaxed));
  }
  out.min = out.count == 0 ? 0 : min;
  return out;
}

uint64_t HistogramSnapshot::percentile(double q) const {
  if (count == 0) return 0;
  if (!(q > 0.0)) return min;  // also catches NaN
  if (q >= 1.0) return max;
  // Nearest rank: the smallest value with at least q * count values at or below it.
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count)));
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bucket_counts.size(); ++i) {
    cumulative += bucket_counts[i];
    if (cumulative < rank) continue;
    if (i == kHistogramOverflowBucket) return max;
    uint64_t low = histogram_bucket_lower_bound(i);
    uint64_t mid = low + (histogram_bucket_upper_bound(i) - low) / 2;
    return std::clamp(mid, min, max);
  }
  return max;  // Unreachable when bucket_counts sums to count.
}

}  // namespace meshrpc
